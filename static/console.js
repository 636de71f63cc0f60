// Console behaviour that would otherwise be inline script (the CSP forbids it).
document.addEventListener("htmx:beforeSwap", function (evt) {
  // htmx 2 does not swap 4xx responses; the console's form errors and refusals are
  // rendered partials that must replace the form, so let them through. A 5xx is the
  // console's error message (templates/errors/_error.html): shown in the panel's place
  // rather than swallowed, so the user is never left looking at a form that did nothing.
  var status = evt.detail.xhr.status;
  if (status === 400 || status === 403 || status === 404 || status === 409 || status === 422 || status === 503) {
    evt.detail.shouldSwap = true;
    evt.detail.isError = false;
  } else if (status >= 500) {
    evt.detail.shouldSwap = true;
  }
});

// No answer at all (the network or the server is down): say so in the message area.
document.addEventListener("htmx:sendError", function () {
  showMessage("The console did not answer, so nothing was changed. Check your connection and try again.", "danger");
});

// --- confirmation ----------------------------------------------------------------------
// A button (or a form) with data-confirm asks first, in the dialog of templates/_confirm.html.
// The message may name the form's values: {amount} is the value of the form's field
// "amount", {total} the sum of its fields marked data-sum (a checkbox counts its
// data-sum value when ticked). data-confirm-button labels the confirming button.
// htmx forms are held at htmx:confirm and sent on confirmation; plain forms are held at
// submit and submitted again with the same button.

function confirmSource(form, submitter) {
  if (submitter && submitter.hasAttribute("data-confirm")) { return submitter; }
  if (form && form.hasAttribute && form.hasAttribute("data-confirm")) { return form; }
  return null;
}

function formTotal(form) {
  var total = 0;
  var decimals = 2;
  form.querySelectorAll("[data-sum]").forEach(function (el) {
    var raw = el.type === "checkbox" ? (el.checked ? el.getAttribute("data-sum") : "0") : el.value;
    var text = String(raw || "0").trim();
    if (/^[0-9]+(\.[0-9]+)?$/.test(text)) { total += Math.round(parseFloat(text) * 100); }
    if (el.hasAttribute("data-decimals")) { decimals = parseInt(el.getAttribute("data-decimals"), 10); }
  });
  return (total / 100).toFixed(decimals);
}

function confirmText(source, form) {
  return source.getAttribute("data-confirm").replace(/\{([a-z_]+)\}/g, function (whole, name) {
    if (name === "total") { return formTotal(form); }
    var field = form && form.elements ? form.elements.namedItem(name) : null;
    return field && "value" in field ? String(field.value).trim() || "—" : whole;
  });
}

// A price far from the current one (the button's data-price-from, or the chosen
// variant's data-price) asks the question the server asks (catalog.price_question)
// instead of the button's own, and the form's "confirmed" field carries the answer.
var FAR_PRICE = 5;

function priceQuestion(source, form) {
  var from = source.getAttribute("data-price-from");
  var variant = form.elements.namedItem("variant_id");
  if (variant && variant.selectedOptions && variant.selectedOptions[0] && variant.selectedOptions[0].dataset.price) {
    from = variant.selectedOptions[0].dataset.price;
  }
  var typed = String((form.elements.namedItem("price") || {}).value || "").trim();
  if (!from || !/^[0-9]+(\.[0-9]+)?$/.test(typed)) { return null; }
  var before = parseFloat(from), after = parseFloat(typed);
  if (!(before > 0) || !(after > 0)) { return null; }
  var ratio = after / before;
  var change = before.toFixed(2) + " \u2192 " + after.toFixed(2);
  if (ratio >= FAR_PRICE) { return change + " is " + ratio.toFixed(1) + " times the price: sure?"; }
  if (ratio <= 1 / FAR_PRICE) { return change + " is " + Math.round(ratio * 100) + "% of the price: sure?"; }
  return null;
}

function confirmQuestion(source, form) {
  if (source.hasAttribute("data-price-from") && form) {
    var question = priceQuestion(source, form);
    var answer = form.elements.namedItem("confirmed");
    if (answer) { answer.value = question ? "yes" : ""; }
    if (question) { return question; }
  }
  return confirmText(source, form);
}

function askToConfirm(message, buttonLabel, onConfirm) {
  var dialog = document.getElementById("confirm-dialog");
  if (!dialog || typeof dialog.showModal !== "function") {
    if (window.confirm(message)) { onConfirm(); }
    return;
  }
  dialog.querySelector("#confirm-message").textContent = message;
  dialog.querySelector("#confirm-yes").textContent = buttonLabel || "Confirm";
  dialog.returnValue = "";
  var opener = document.activeElement;  // focus goes back there when the dialog closes
  dialog.addEventListener("close", function closed() {
    dialog.removeEventListener("close", closed);
    if (opener && opener.focus && document.contains(opener)) { opener.focus(); }
    if (dialog.returnValue === "confirm") { onConfirm(); }
  });
  dialog.showModal();
  dialog.querySelector("#confirm-no").focus();
}

document.addEventListener("htmx:confirm", function (evt) {
  // The element htmx acts for: a form, or a button with its own hx-post inside one.
  var elt = evt.detail.elt;
  var form = elt.closest ? elt.closest("form") : null;
  var trigger = evt.detail.triggeringEvent;
  // A button that posts by itself (hx-post on the button, as in the customer's account
  // panel) is triggered by a click, not a submit: it asks with its own data-confirm.
  var source = confirmSource(elt, trigger && trigger.submitter) || (form && form !== elt ? confirmSource(form, null) : null);
  if (!source) { return; }
  evt.preventDefault();
  askToConfirm(confirmQuestion(source, form), source.getAttribute("data-confirm-button"), function () {
    evt.detail.issueRequest(true);
  });
});

document.addEventListener("submit", function (evt) {
  var form = evt.target;
  if (form.hasAttribute("hx-post") || (evt.submitter && evt.submitter.hasAttribute("hx-post"))) {
    return;  // htmx sends it, asking at htmx:confirm
  }
  if (form.dataset.confirmed === "yes") { delete form.dataset.confirmed; return; }
  var source = confirmSource(form, evt.submitter);
  if (!source) { return; }
  evt.preventDefault();
  var submitter = evt.submitter;
  askToConfirm(confirmQuestion(source, form), source.getAttribute("data-confirm-button"), function () {
    form.dataset.confirmed = "yes";
    if (submitter) { form.requestSubmit(submitter); } else { form.requestSubmit(); }
  });
}, true);

// --- messages ----------------------------------------------------------------------------

function showMessage(message, category) {
  var area = document.getElementById("flashes");
  if (!area || !message) { return; }
  var alert = document.createElement("div");
  alert.className = "alert alert-" + (category || "success") + " alert-dismissible fade show";
  alert.setAttribute("role", "status");
  alert.textContent = message;
  var close = document.createElement("button");
  close.type = "button";
  close.className = "btn-close";
  close.setAttribute("data-bs-dismiss", "alert");
  close.setAttribute("aria-label", "Close");
  alert.appendChild(close);
  area.replaceChildren(alert);
}

// Staff, activity: an htmx action answers with HX-Trigger {"console:flash": {message, category}};
// show it in the message area like a flashed message (built with the DOM, never as HTML).
document.addEventListener("console:flash", function (evt) {
  if (evt.detail) { showMessage(evt.detail.message, evt.detail.category); }
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

// A "select all" checkbox (data-select-all="field name") ticks every checkbox of that name
// in its form: the moderation queue's page of reviews.
document.addEventListener("change", function (evt) {
  var box = evt.target;
  if (!box.matches || !box.matches("input[data-select-all]") || !box.form) { return; }
  box.form.querySelectorAll('input[type="checkbox"][name="' + box.getAttribute("data-select-all") + '"]')
    .forEach(function (other) { other.checked = box.checked; });
});

// A button with data-print prints the page (the print stylesheet leaves the menus out).
document.addEventListener("click", function (evt) {
  var button = evt.target.closest ? evt.target.closest("[data-print]") : null;
  if (button) { window.print(); }
});

// --- the template editor's preview -------------------------------------------------------
// A draft that can't be rendered (data-preview-failed) keeps the last preview that did,
// greyed below the error, so the text being fixed stays in view.
var lastPreview = null;

document.addEventListener("htmx:beforeSwap", function (evt) {
  if (evt.detail.target && evt.detail.target.id === "preview") {
    lastPreview = evt.detail.target.querySelector(".preview-rendered");
  }
});

document.addEventListener("htmx:afterSwap", function (evt) {
  var target = evt.detail.target;
  if (!target || target.id !== "preview" || !lastPreview || !target.querySelector("[data-preview-failed]")) { return; }
  var kept = lastPreview.cloneNode(true);
  kept.classList.add("preview-stale");
  kept.id = "preview-last";
  if (!kept.querySelector(".preview-stale-note")) {
    var note = document.createElement("div");
    note.className = "preview-stale-note small fw-semibold mb-1";
    note.textContent = "The last preview that rendered:";
    kept.insertBefore(note, kept.firstChild);
  }
  kept.querySelectorAll("[id]").forEach(function (el) { if (!/-last$/.test(el.id)) { el.id = el.id + "-last"; } });
  target.appendChild(kept);
});

