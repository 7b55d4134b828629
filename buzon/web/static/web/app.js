// Show Django's messages as toasts, on page load and after htmx swaps in new ones.
(function () {
  function showToasts(root) {
    if (!window.bootstrap) return;
    root.querySelectorAll("[data-bz-toast]").forEach(function (el) {
      el.removeAttribute("data-bz-toast");
      new bootstrap.Toast(el, { delay: 6000 }).show();
    });
  }
  document.addEventListener("DOMContentLoaded", function () { showToasts(document); });
  document.addEventListener("htmx:afterSwap", function (event) { showToasts(event.target); });
})();

// Options of a direction (incoming / outgoing) show only while that direction is enabled; hidden
// fields are still submitted, so nothing typed is lost by switching a direction off and on.
(function () {
  function sync(toggle) {
    document.querySelectorAll('[data-bz-depends="' + toggle.id + '"]').forEach(function (el) {
      el.hidden = !toggle.checked;
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var ids = new Set();
    document.querySelectorAll("[data-bz-depends]").forEach(function (el) { ids.add(el.dataset.bzDepends); });
    ids.forEach(function (id) {
      var toggle = document.getElementById(id);
      if (!toggle) return;
      sync(toggle);
      toggle.addEventListener("change", function () { sync(toggle); });
    });
  });
})();
