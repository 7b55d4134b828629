// Keyboard shortcuts of the inbox and the conversation page ("?" lists them: #shortcuts-help).
// List: j / k next / previous row, Enter opens it, x ticks it. Conversation: r reply, n note,
// c close, a assign. Anywhere: / search, g then i the inbox. Keys typed in a field are the field's.
(function () {
  "use strict";
  if (window.bzShortcuts) return;  // included by several templates of one page
  window.bzShortcuts = true;
  var pendingG = 0;

  function typing(target) {
    if (!(target instanceof Element)) return false;
    return target.closest("input, textarea, select, [contenteditable=''], [contenteditable='true']") !== null;
  }

  function rows() { return Array.prototype.slice.call(document.querySelectorAll("#conversation-list tbody tr")); }

  function move(step) {
    var all = rows();
    if (!all.length) return;
    var at = all.findIndex(function (tr) { return tr.classList.contains("table-active"); });
    var next = at < 0 ? 0 : Math.min(all.length - 1, Math.max(0, at + step));
    all.forEach(function (tr) { tr.classList.remove("table-active"); tr.removeAttribute("aria-current"); });
    all[next].classList.add("table-active");
    all[next].setAttribute("aria-current", "true");
    all[next].scrollIntoView({ block: "nearest" });
  }

  function chosenRow() { return document.querySelector("#conversation-list tbody tr.table-active"); }

  function focus(selector) {
    var el = document.querySelector(selector);
    if (!el) return false;
    el.scrollIntoView({ block: "center" });
    el.focus();
    return true;
  }

  function closeConversation() {
    var select = document.getElementById("conversation-status-select");
    if (!select || !select.form) return false;
    select.value = "closed";
    select.form.submit();
    return true;
  }

  function help() {
    var dialog = document.getElementById("shortcuts-help");
    if (!dialog || !window.bootstrap) return false;
    bootstrap.Modal.getOrCreateInstance(dialog).show();
    return true;
  }

  function inbox() {
    var script = document.getElementById("shortcuts-script");
    window.location.href = (script && script.getAttribute("data-bz-inbox")) || "/conversations/";
    return true;
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    var key = event.key;
    if (pendingG && Date.now() - pendingG < 1500) {
      pendingG = 0;
      if (key === "i" && inbox()) { event.preventDefault(); return; }
    }
    pendingG = 0;
    var done = false;
    switch (key) {
      case "j": move(1); done = rows().length > 0; break;
      case "k": move(-1); done = rows().length > 0; break;
      case "Enter": {
        var row = chosenRow();
        var link = row ? row.querySelector("a[href]") : null;
        if (link) { window.location.href = link.getAttribute("href"); done = true; }
        break;
      }
      case "x": {
        var picked = chosenRow();
        var box = picked ? picked.querySelector(".bulk-pick") : null;
        if (box) { box.click(); done = true; }
        break;
      }
      case "r": done = focus("#reply-text"); break;
      case "n": done = focus("#note-text"); break;
      case "c": done = closeConversation(); break;
      case "a": done = focus("#conversation-agent-select"); break;
      case "/": done = focus("#f-q, #search, input[type=search]"); break;
      case "g": pendingG = Date.now(); done = true; break;
      case "?": done = help(); break;
    }
    if (done) event.preventDefault();
  });

  // The bulk toolbar: "tick all" ticks every row of the page; the count says how many are ticked.
  function countTicked() {
    var label = document.getElementById("bulk-count");
    if (!label) return;
    var ticked = document.querySelectorAll(".bulk-pick:checked").length;
    label.textContent = ticked ? label.getAttribute("data-bz-some").replace("%(count)s", String(ticked))
                               : label.getAttribute("data-bz-none");
  }
  document.addEventListener("change", function (event) {
    var el = event.target;
    if (!(el instanceof HTMLInputElement)) return;
    if (el.id === "bulk-all") {
      document.querySelectorAll(".bulk-pick").forEach(function (box) { box.checked = el.checked; });
    }
    if (el.id === "bulk-all" || el.classList.contains("bulk-pick")) countTicked();
  });
  document.addEventListener("bz:list-refreshed", countTicked);
})();
