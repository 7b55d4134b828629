// Live conversation pages. Every ~1.5 s the page asks the server "anything since <token>?" (one
// indexed query) and, only when something changed, fetches the page again and swaps in the parts
// that show it: the list's rows (#conversation-table), or the conversation's thread, history and
// status/agent forms. The conversation's poll also says whether this person is viewing or typing,
// and answers who else is on it (#presence-bar).
(function () {
  "use strict";
  var EVERY_MS = 1500;
  var TYPING_MS = 4000;
  var lastTyped = 0;
  var busy = false;

  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || ""; }
    catch (e) { return ""; }
  }

  function fetchPage() {
    return fetch(window.location.href, { credentials: "same-origin", headers: { "X-Buzon-Live": "1" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) { return new DOMParser().parseFromString(html, "text/html"); });
  }

  function focusedIn(el) { return el && document.activeElement && el.contains(document.activeElement); }

  function swap(id, fresh, parentForNew) {
    var old = document.getElementById(id);
    var now = fresh.getElementById(id);
    if (!now) return;
    now = document.importNode(now, true);
    if (old) {
      if (!focusedIn(old)) old.replaceWith(now);
    } else if (parentForNew) {
      parentForNew.appendChild(now);
    }
  }

  function refreshList() {
    return fetchPage().then(function (fresh) {
      var table = document.getElementById("conversation-table");
      var ticked = new Set(Array.prototype.map.call(
        document.querySelectorAll(".bulk-pick:checked"), function (el) { return el.value; }));
      var current = document.querySelector("#conversation-list tr.table-active");
      var currentId = current ? current.getAttribute("data-conversation") : null;
      var now = fresh.getElementById("conversation-table");
      if (!table || !now) return;
      table.innerHTML = now.innerHTML;
      document.querySelectorAll(".bulk-pick").forEach(function (el) { el.checked = ticked.has(el.value); });
      if (currentId) {
        var row = document.querySelector('#conversation-list tr[data-conversation="' + currentId + '"]');
        if (row) row.classList.add("table-active");
      }
      document.dispatchEvent(new CustomEvent("bz:list-refreshed"));
    });
  }

  function refreshConversation() {
    return fetchPage().then(function (fresh) {
      var column = document.getElementById("assign-form");
      column = column ? column.closest(".col-lg-4") : null;
      swap("thread", fresh, null);
      swap("history", fresh, column);
      swap("status-form", fresh, null);
      swap("assign-form", fresh, null);
    });
  }

  function showPresence(bar, present) {
    bar.textContent = "";
    present.forEach(function (p) {
      var badge = document.createElement("span");
      badge.className = "badge rounded-pill presence " + (p.state === "typing" ? "text-bg-warning" : "text-bg-info");
      badge.setAttribute("data-state", p.state);
      var icon = document.createElement("i");
      icon.className = "bi me-1 " + (p.state === "typing" ? "bi-pencil" : "bi-eye");
      badge.appendChild(icon);
      badge.appendChild(document.createTextNode(p.text));
      bar.appendChild(badge);
    });
  }

  function poll(url, holder, params, onChanged, onAnswer) {
    if (busy || document.hidden) return;
    busy = true;
    var query = new URLSearchParams(params);
    query.set("since", holder.getAttribute("data-bz-live-token") || "");
    fetch(url + "?" + query.toString(), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (answer) {
        if (onAnswer) onAnswer(answer);
        if (!answer.changed) { holder.setAttribute("data-bz-live-token", answer.token); return null; }
        // The token moves on only once the fresh page is in: a failed fetch asks again next time.
        return onChanged().then(function () { holder.setAttribute("data-bz-live-token", answer.token); });
      })
      .catch(function () { /* offline or signed out: try again on the next tick */ })
      .then(function () { busy = false; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var list = document.getElementById("conversation-table");
    if (list && list.getAttribute("data-bz-live-list")) {
      window.setInterval(function () {
        var holder = document.getElementById("conversation-table");
        poll(holder.getAttribute("data-bz-live-list"), holder, {}, refreshList, null);
      }, EVERY_MS);
    }
    var bar = document.getElementById("presence-bar");
    if (bar && bar.getAttribute("data-bz-live-conversation")) {
      document.addEventListener("input", function (event) {
        var t = event.target;
        if (t instanceof HTMLTextAreaElement || (t instanceof HTMLInputElement && t.type === "text")) lastTyped = Date.now();
      });
      var tick = function () {
        var state = Date.now() - lastTyped < TYPING_MS ? "typing" : "viewing";
        poll(bar.getAttribute("data-bz-live-conversation"), bar, { state: state }, refreshConversation,
             function (answer) { showPresence(bar, answer.present || []); });
      };
      tick();
      window.setInterval(tick, EVERY_MS);
      window.addEventListener("pagehide", function () {
        var body = new FormData();
        body.append("csrfmiddlewaretoken", csrfToken());
        if (navigator.sendBeacon) navigator.sendBeacon(bar.getAttribute("data-bz-live-leave"), body);
      });
    }
  });
})();
