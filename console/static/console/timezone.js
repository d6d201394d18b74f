// Sends the browser's time zone once, when the person has none saved yet (no inline script: CSP-ready), without
// reloading the page.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var home = document.getElementById("console-home");
    if (!home || home.dataset.timeZoneSet === "1" || !window.Intl || !window.fetch) { return; }
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    var token = document.querySelector("#home-time-zone input[name=csrfmiddlewaretoken]");
    if (!zone || !token) { return; }
    var body = new URLSearchParams({ time_zone: zone, source: "browser" });
    fetch(home.dataset.timeZoneUrl, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "X-CSRFToken": token.value, "X-Requested-With": "fetch" }
    }).then(function (response) {
      // No reload: a reload would cut short whatever the person (or a test) opens next. The next page shows
      // times in the saved zone; this one says so.
      if (!response.ok) { return; }
      home.dataset.timeZoneSet = "1";
      var note = document.getElementById("home-time-zone-note");
      if (note) { note.textContent = "Times are shown in " + zone + " from the next page on."; }
    });
  });
})();
