// Console behaviour that would otherwise be inline script (the CSP forbids it).
document.addEventListener("htmx:beforeSwap", function (evt) {
  // htmx 2 does not swap 4xx responses; the console's form errors and refusals are
  // rendered partials that must replace the form, so let them through.
  var status = evt.detail.xhr.status;
  if (status === 400 || status === 403 || status === 404 || status === 409 || status === 422 || status === 503) {
    evt.detail.shouldSwap = true;
    evt.detail.isError = false;
  }
});

// Buttons with data-confirm ask before submitting.
document.addEventListener("submit", function (evt) {
  var msg = evt.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) { evt.preventDefault(); }
}, true);

// Staff, activity: an htmx action answers with HX-Trigger {"console:flash": {message, category}};
// show it in the message area like a flashed message (built with the DOM, never as HTML).
document.addEventListener("console:flash", function (evt) {
  var area = document.getElementById("flashes");
  if (!area || !evt.detail || !evt.detail.message) { return; }
  var alert = document.createElement("div");
  alert.className = "alert alert-" + (evt.detail.category || "success") + " alert-dismissible fade show";
  alert.setAttribute("role", "status");
  alert.textContent = evt.detail.message;
  var close = document.createElement("button");
  close.type = "button";
  close.className = "btn-close";
  close.setAttribute("data-bs-dismiss", "alert");
  close.setAttribute("aria-label", "Close");
  alert.appendChild(close);
  area.replaceChildren(alert);
});

// A "select all" checkbox (data-select-all="field name") ticks every checkbox of that name
// in its form: the moderation queue's page of reviews.
document.addEventListener("change", function (evt) {
  var box = evt.target;
  if (!box.matches || !box.matches("input[data-select-all]") || !box.form) { return; }
  box.form.querySelectorAll('input[type="checkbox"][name="' + box.getAttribute("data-select-all") + '"]')
    .forEach(function (other) { other.checked = box.checked; });
});
