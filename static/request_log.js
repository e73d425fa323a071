// The request log: a tap or click anywhere on a row opens it (the row's "Details" link does the work, so the
// keyboard and pages without JavaScript keep that link), and opening an open row closes it. The poller puts
// fresh copies of the messages that have new attempts on top; each one's older copy goes, its opened rows kept.
(function () {
  "use strict";

  // A click on a row that is not on one of its own controls, and not the end of selecting its text, opens it.
  document.addEventListener("click", function (event) {
    var row = event.target.closest("tr.log-row");
    if (!row || event.target.closest("a, button, input, select, label, summary")) return;
    if (String(window.getSelection ? window.getSelection() : "")) return;
    var link = row.querySelector("a[data-inspect]");
    if (link) link.click();
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

  // Replace each message's older copy by the fresh one the poller brought (the first in the page), moving the
  // opened attempts' panels under the same attempts in the fresh copy.
  function mergeMessages() {
    var seen = {};
    document.querySelectorAll("tbody.message").forEach(function (body) {
      var fresh = seen[body.id];
      if (!fresh) { seen[body.id] = body; return; }
      body.querySelectorAll("tr.inspector").forEach(function (panel) {
        var rid = panel.getAttribute("data-request-id");
        var row = fresh.querySelector('tr.log-row[data-request-id="' + rid + '"]');
        if (!row || fresh.querySelector("#inspect-" + rid)) return;
        row.after(panel);
        var link = row.querySelector("a[data-inspect]");
        if (link) link.setAttribute("aria-expanded", String(!panel.hidden));
      });
      body.remove();
    });
  }

  document.addEventListener("htmx:afterSwap", function (event) {
    if (document.querySelector("tbody.message")) mergeMessages();
    var link = (event.detail.requestConfig && event.detail.requestConfig.elt) || event.detail.elt;
    if (!link.matches || !link.matches("a[data-inspect]")) return;
    link.setAttribute("aria-expanded", "true");
    // On a phone the panel can start below the fold: bring its beginning into view.
    var panel = document.getElementById(link.getAttribute("aria-controls"));
    if (panel && panel.getBoundingClientRect().top > window.innerHeight * 0.6) {
      panel.scrollIntoView({ block: "start", behavior: "smooth" });
    }
  });
})();
