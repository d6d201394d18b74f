// Reloads a page while what it shows is live (a running job run): the page marks itself with data-live-refresh
// (seconds). Stops when the run has finished (the reloaded page no longer carries the mark). No inline script.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var mark = document.querySelector("[data-live-refresh]");
    if (!mark) { return; }
    var seconds = Math.max(2, parseInt(mark.getAttribute("data-live-refresh"), 10) || 5);
    window.setTimeout(function () { window.location.reload(); }, seconds * 1000);
  });
})();
