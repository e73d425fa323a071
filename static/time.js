// Show every <time datetime="…"> in the reader's own time zone with a relative hint ("3 minutes ago").
// The server writes UTC text; that text moves to the title, so hovering still shows the exact UTC time.
// Without JavaScript the UTC text simply stays.
(function () {
  "use strict";

  var UNITS = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400], ["hour", 3600], ["minute", 60]];
  var relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  var FORMATS = {  // the shortest that is clear: the time today, no year this year
    today: new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" }),
    thisYear: new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" }),
    other: new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" })
  };

  function parse(value) {
    // Python writes microseconds ("…:05.123456Z"); Date.parse only promises milliseconds.
    var when = new Date(value.replace(/(\.\d{3})\d+/, "$1"));
    return isNaN(when.getTime()) ? null : when;
  }

  function relativeText(when, now) {
    var seconds = Math.round((when.getTime() - now) / 1000);
    for (var i = 0; i < UNITS.length; i++) {
      if (Math.abs(seconds) >= UNITS[i][1]) {
        return relative.format(Math.round(seconds / UNITS[i][1]), UNITS[i][0]);
      }
    }
    return seconds > 0 ? relative.format(seconds, "second") : "just now";
  }

  function localText(when, today) {
    if (when.toDateString() === today.toDateString()) return FORMATS.today.format(when);
    if (when.getFullYear() === today.getFullYear()) return FORMATS.thisYear.format(when);
    return FORMATS.other.format(when);
  }

  function render(element, now) {
    var when = parse(element.getAttribute("datetime") || "");
    if (!when) return;
    if (!element.hasAttribute("data-utc")) {
      element.setAttribute("data-utc", element.textContent.trim());
      element.title = element.textContent.trim();
    }
    element.textContent = localText(when, new Date(now)) + " (" + relativeText(when, now) + ")";
  }

  function renderAll(root) {
    var now = Date.now();
    var scope = root && root.querySelectorAll ? root : document;
    if (scope.matches && scope.matches("time[datetime]")) render(scope, now);
    scope.querySelectorAll("time[datetime]").forEach(function (element) { render(element, now); });
  }

  document.addEventListener("DOMContentLoaded", function () { renderAll(document); });
  // Rows that htmx adds later (the request log's poller, boosted forms) get the same treatment.
  document.addEventListener("htmx:load", function (event) { renderAll(event.target); });
  setInterval(function () { renderAll(document); }, 60000);
})();
