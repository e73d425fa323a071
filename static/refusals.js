// Every refusal is shown. htmx leaves 4xx and 5xx answers unswapped, so without this a refused action (removing
// the only owner, a resend while disabled, a form error) showed nothing. Here:
// - a boosted form or link (the confirm buttons) gets the page the server answered with, which names the problem;
// - an htmx fragment answer (resend 409) is swapped into its target like a success;
// - a whole error page answering a fragment request, a 5xx or no answer at all becomes a message next to the
//   element that made the request.
(function () {
  "use strict";

  function isWholePage(text) {
    return /^\s*<!doctype html|^\s*<html/i.test(text);
  }

  // The sentence an error page or a page with a refusal carries, read without running any of it.
  function reasonIn(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var place = doc.querySelector("main [role=alert], main .flash-error, main .field-error, .error-page h1 + p");
    return place ? place.textContent.trim() : "";
  }

  function showNextTo(element, text) {
    var anchor = element.closest("form") || element;
    var note = anchor.nextElementSibling;
    if (!note || !note.classList.contains("action-error")) {
      note = document.createElement("span");
      note.className = "action-error";
      note.setAttribute("role", "alert");
      anchor.insertAdjacentElement("afterend", note);
    }
    note.textContent = text;
  }

  function clearNextTo(element) {
    var anchor = element.closest("form") || element;
    var note = anchor.nextElementSibling;
    if (note && note.classList.contains("action-error")) note.remove();
  }

  document.addEventListener("htmx:beforeSwap", function (event) {
    var detail = event.detail, status = detail.xhr.status;
    if (status < 400) { clearNextTo(detail.elt); return; }
    var text = detail.xhr.responseText || "";
    var boosted = detail.boosted || (detail.requestConfig && detail.requestConfig.boosted);
    if (status < 500 && text && (boosted || !isWholePage(text))) {
      detail.shouldSwap = true;
      detail.isError = false;
      return;
    }
    detail.shouldSwap = false;
    var reason = isWholePage(text) ? reasonIn(text) : "";
    showNextTo(detail.elt, status >= 500
      ? "Hookline could not do this (error " + status + "). Try again; if it keeps failing, check the server's log."
      : (reason || "Refused (error " + status + ")."));
  });

  document.addEventListener("htmx:sendError", function (event) {
    showNextTo(event.detail.elt, "Hookline did not answer: check your connection, then try again.");
  });
})();
