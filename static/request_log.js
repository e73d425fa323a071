// The request log's inspector: copy buttons, and closing a row opened with htmx. Without this file every value
// is plain selectable text and a row opens by following its link.
(function () {
  "use strict";
  document.documentElement.classList.add("js"); // the copy buttons show only when they can work

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain http (a dashboard on a LAN address): the Clipboard API is off there; copy through a selection.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var done = document.execCommand("copy");
    area.remove();
    return done ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function confirm(button, text) {
    button.textContent = text;
    clearTimeout(button._reset);
    button._reset = setTimeout(function () { button.textContent = "Copy"; }, 1500);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy], button[data-copy-from]");
    if (!button) return;
    var source = button.hasAttribute("data-copy") ? null : document.getElementById(button.getAttribute("data-copy-from"));
    var text = source ? source.textContent : button.getAttribute("data-copy");
    copyText(text).then(
      function () { confirm(button, "Copied"); },
      function () { confirm(button, "Select the text to copy"); }
    );
  });

  // A second click on "Details" closes the row (and a third opens it again) instead of loading it once more.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var link = event.detail.elt;
    if (!link.matches || !link.matches("a[data-inspect]")) return;
    var panel = document.getElementById(link.getAttribute("aria-controls"));
    if (!panel) return;
    event.preventDefault();
    panel.hidden = !panel.hidden;
    link.setAttribute("aria-expanded", String(!panel.hidden));
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    var link = (event.detail.requestConfig && event.detail.requestConfig.elt) || event.detail.elt;
    if (link.matches && link.matches("a[data-inspect]")) link.setAttribute("aria-expanded", "true");
  });

  // A refused resend (409) says why: show it where the button was (htmx leaves error answers unswapped).
  document.addEventListener("htmx:beforeSwap", function (event) {
    var form = event.detail.elt;
    if (event.detail.xhr.status === 409 && form.matches && form.matches("form[data-resend]")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
