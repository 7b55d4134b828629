// Canned responses in the Reply box: the caller's responses (their own and their stores' shared ones,
// from /api/v1/canned-responses/, the URL in the textarea's data-bz-canned) fill the "Insert a canned
// response" select; typing "/" and the start of a shortcut lists the matches under the box, and Enter,
// Tab or a click puts the response's text in place of "/shortcut". Texts are inserted as plain text.
document.addEventListener("DOMContentLoaded", function () {
  var box = document.querySelector("textarea[data-bz-canned]");
  if (!box) return;
  var select = document.querySelector("select[data-bz-canned-for='" + box.id + "']");
  var list = document.getElementById("canned-suggestions");
  var responses = [];
  var shown = [];
  var active = 0;

  function load(url, pages) {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : { results: [] }; })
      .then(function (data) {
        responses = responses.concat(data.results || []);
        if (data.next && pages < 10) {
          var next = new URL(url, window.location.href);
          next.searchParams.set("after", data.next);
          load(next.toString(), pages + 1);
        } else {
          fill();
        }
      })
      .catch(function () {});
  }

  function fill() {
    if (!select) return;
    responses.forEach(function (item, index) {
      var option = document.createElement("option");
      option.value = String(index);
      option.textContent = "/" + item.shortcut + " · " + item.title + (item.store_name ? " (" + item.store_name + ")" : "");
      select.appendChild(option);
    });
    select.dataset.bzLoaded = String(responses.length);
  }

  function insert(item, start) {
    var end = box.selectionEnd;
    var from = start === undefined ? box.selectionStart : start;
    box.value = box.value.slice(0, from) + item.text + box.value.slice(end);
    var caret = from + item.text.length;
    box.focus();
    box.setSelectionRange(caret, caret);
    hide();
    box.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function typed() {
    var before = box.value.slice(0, box.selectionStart);
    var match = /(^|\s)\/([a-z0-9_-]*)$/i.exec(before);
    return match ? { prefix: match[2].toLowerCase(), start: box.selectionStart - match[2].length - 1 } : null;
  }

  function hide() {
    shown = [];
    if (list) { list.classList.add("d-none"); list.replaceChildren(); }
  }

  function render(start) {
    list.replaceChildren();
    shown.forEach(function (item, index) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "list-group-item list-group-item-action py-1 small canned-suggestion" + (index === active ? " active" : "");
      button.setAttribute("role", "option");
      button.dataset.shortcut = item.shortcut;
      var code = document.createElement("code");
      code.className = "text-reset";
      code.textContent = "/" + item.shortcut;
      button.appendChild(code);
      button.appendChild(document.createTextNode(" " + item.title));
      button.addEventListener("mousedown", function (event) { event.preventDefault(); insert(item, start); });
      list.appendChild(button);
    });
    list.classList.toggle("d-none", shown.length === 0);
  }

  box.addEventListener("input", function () {
    var found = typed();
    if (!found || !list) { hide(); return; }
    shown = responses.filter(function (item) { return item.shortcut.indexOf(found.prefix) === 0; }).slice(0, 8);
    active = 0;
    render(found.start);
  });

  box.addEventListener("keydown", function (event) {
    if (!shown.length) return;
    var found = typed();
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      active = (active + (event.key === "ArrowDown" ? 1 : shown.length - 1)) % shown.length;
      render(found ? found.start : box.selectionStart);
    } else if ((event.key === "Enter" || event.key === "Tab") && found) {
      event.preventDefault();
      insert(shown[active], found.start);
    } else if (event.key === "Escape") {
      hide();
    }
  });

  box.addEventListener("blur", function () { window.setTimeout(hide, 150); });

  if (select) {
    select.addEventListener("change", function () {
      var item = responses[Number(select.value)];
      if (select.value !== "" && item) insert(item);
      select.value = "";
    });
  }

  load(box.dataset.bzCanned, 1);
});
