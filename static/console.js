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

// --- Confirmation dialog -------------------------------------------------------------
// One modal <dialog> (templates/base.html) asks before the actions marked with
// data-confirm (on a form or its submit button) or hx-confirm. It opens with Cancel
// focused, Tab reaches the confirming button (named after the action), Escape or Cancel
// closes it, and focus goes back to the control that asked.
function confirmAction(message, actionLabel, opener, proceed) {
  var dialog = document.getElementById("confirm-dialog");
  if (!dialog || typeof dialog.showModal !== "function") {
    if (window.confirm(message)) { proceed(); }
    return;
  }
  document.getElementById("confirm-dialog-message").textContent = message;
  var ok = document.getElementById("confirm-dialog-ok");
  ok.textContent = (actionLabel || "").trim() || "Confirm";
  dialog.returnValue = "";
  dialog.addEventListener("close", function onClose() {
    dialog.removeEventListener("close", onClose);
    if (opener && document.contains(opener)) { opener.focus(); }
    if (dialog.returnValue === "confirm") { proceed(); }
  });
  dialog.showModal();
  document.getElementById("confirm-dialog-cancel").focus();
}

function actionLabelOf(elt) {
  if (!elt) { return ""; }
  if (elt.tagName === "BUTTON") { return elt.textContent; }
  var button = elt.querySelector("button[type=submit], button:not([type])");
  return button ? button.textContent : "";
}

document.addEventListener("submit", function (evt) {
  var form = evt.target, submitter = evt.submitter;
  var msg = (submitter && submitter.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
  if (!msg) { return; }
  if (form.dataset.confirmed === "yes") { delete form.dataset.confirmed; return; }
  evt.preventDefault();
  evt.stopImmediatePropagation();  // htmx's own submit handler waits for the answer
  confirmAction(msg, actionLabelOf(submitter || form), submitter || form, function () {
    form.dataset.confirmed = "yes";
    form.requestSubmit(submitter || undefined);
  });
}, true);

document.addEventListener("htmx:confirm", function (evt) {
  if (!evt.detail.question) { return; }
  evt.preventDefault();
  var elt = evt.detail.elt;
  confirmAction(evt.detail.question, actionLabelOf(elt), document.activeElement || elt, function () {
    evt.detail.issueRequest(true);
  });
});

// --- Keyboard shortcut: "/" goes to the header search ----------------------------------
document.addEventListener("keydown", function (evt) {
  if (evt.key !== "/" || evt.ctrlKey || evt.metaKey || evt.altKey || evt.defaultPrevented) { return; }
  var target = evt.target;
  if (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)) { return; }
  var search = document.getElementById("global-search");
  if (!search || document.querySelector("dialog[open]")) { return; }
  evt.preventDefault();
  search.focus();
  search.select();
});

// --- Screen readers: errors tied to their fields, htmx updates announced ---------------
// A field marked is-invalid gets aria-invalid and aria-describedby pointing at its
// .invalid-feedback messages, whichever template rendered them.
function describeErrors(root) {
  root.querySelectorAll(".is-invalid").forEach(function (field, index) {
    var holder = field.closest(".form-group, .mb-3, .col, [class*='col-'], .input-group") || field.parentElement;
    var ids = [];
    holder.querySelectorAll(".invalid-feedback").forEach(function (message, n) {
      if (!message.id) { message.id = (field.id || "field-" + index) + "-error-" + n; }
      ids.push(message.id);
    });
    field.setAttribute("aria-invalid", "true");
    if (ids.length) {
      var own = (field.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean);
      field.setAttribute("aria-describedby", own.concat(ids.filter(function (id) { return own.indexOf(id) < 0; })).join(" "));
    }
  });
}

// What an htmx swap changed, in words, for the polite live region: the target's
// data-announce, else its first error or message, else how many rows its table shows.
function announcementFor(target) {
  if (!target || !target.querySelector) { return ""; }
  if (target.dataset && target.dataset.announce) { return target.dataset.announce; }
  var message = target.querySelector("[role=alert], .invalid-feedback, [role=status], .alert");
  if (message && message.textContent.trim()) { return message.textContent.trim().replace(/\s+/g, " "); }
  var table = target.tagName === "TABLE" ? target : target.querySelector("table");
  if (table) {
    var heading = document.querySelector("main h1");
    var caption = table.getAttribute("aria-label") || (table.caption && table.caption.textContent.trim())
      || (heading && heading.textContent.trim()) || "Table";
    var rows = table.querySelectorAll("tbody tr").length;
    return caption + " updated: " + (rows === 1 ? "1 row" : rows + " rows") + " shown.";
  }
  return "";
}

function announce(text) {
  var region = document.getElementById("live-region");
  if (!region || !text) { return; }
  region.textContent = "";
  // A fresh text node after a tick, so the same words twice are read twice.
  window.setTimeout(function () { region.textContent = text; }, 50);
}

document.addEventListener("DOMContentLoaded", function () { describeErrors(document); });
document.addEventListener("htmx:afterSettle", function (evt) {
  var target = evt.detail.target;
  if (target && document.contains(target)) { describeErrors(target); }
  announce(announcementFor(target && document.contains(target) ? target : evt.detail.elt));
});
