// Copy buttons (DSNs, a new token, the secret, ids, the request log's values): <button class="copy" data-copy="text">
// or data-copy-from="<id of the element whose text to copy>". The buttons show only with this file loaded (the
// "js" class); without it every value is plain selectable text.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain http (a dashboard on a LAN address): the Clipboard API is off there; copy through a selection.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "visually-hidden";
    document.body.appendChild(area);
    area.select();
    var done = document.execCommand("copy");
    area.remove();
    return done ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function show(button, text, copied) {
    if (!button.hasAttribute("data-label")) button.setAttribute("data-label", button.textContent);
    button.textContent = text;
    button.classList.toggle("copied", copied);
    clearTimeout(button._reset);
    button._reset = setTimeout(function () {
      button.textContent = button.getAttribute("data-label");
      button.classList.remove("copied");
    }, 2000);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy], button[data-copy-from]");
    if (!button) return;
    var source = button.hasAttribute("data-copy") ? null : document.getElementById(button.getAttribute("data-copy-from"));
    var text = source ? source.textContent : button.getAttribute("data-copy");
    copyText(text).then(
      function () { show(button, "Copied", true); },
      function () { show(button, "Select the text to copy", false); }
    );
  });
})();
