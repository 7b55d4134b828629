// Page behaviours that used to be inline script or on*= attributes: the Content-Security-Policy
// (buzon/web/security.py) allows script from our own files only.

// <select data-bz-autosubmit>: submit its form when the choice changes (status filters).
document.addEventListener("change", function (event) {
  var el = event.target;
  if (el instanceof HTMLSelectElement && el.hasAttribute("data-bz-autosubmit") && el.form) {
    el.form.submit();
  }
});

// Compose: choosing a template fills subject and message from it and the record being answered.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.querySelector("form[data-bz-compose-url]");
  if (!form) return;
  var select = document.getElementById(form.dataset.bzTemplate);
  if (!select) return;
  select.addEventListener("change", function () {
    var params = new URLSearchParams({
      template: select.value,
      record_type: document.getElementById(form.dataset.bzRecordType).value,
      record_id: document.getElementById(form.dataset.bzRecordId).value,
    });
    htmx.ajax("GET", form.dataset.bzComposeUrl + "?" + params.toString(), { target: "#compose-body", swap: "innerHTML" });
  });
});

// <button data-bz-copy="ID">: copy the value of the element with that id (an invitation link).
document.addEventListener("click", function (event) {
  var button = event.target instanceof Element ? event.target.closest("[data-bz-copy]") : null;
  if (!button) return;
  var field = document.getElementById(button.getAttribute("data-bz-copy"));
  if (!field) return;
  field.select();
  if (navigator.clipboard) navigator.clipboard.writeText(field.value);
});
