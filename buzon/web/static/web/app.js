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
