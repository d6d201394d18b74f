// Refreshes the operations page's body while it is open: fetches the same URL with fragment=1 and swaps it in.
(function () {
  "use strict";
  // The window and job pickers submit their form when changed (no inline handlers: the CSP forbids them).
  Array.prototype.forEach.call(document.querySelectorAll("#ops-controls select"), function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
  var body = document.getElementById("ops-body");
  if (!body) { return; }
  var seconds = parseInt(body.getAttribute("data-refresh-s"), 10) || 30;
  function refresh() {
    if (document.hidden) { return; }
    var url = new URL(window.location.href);
    url.searchParams.set("fragment", "1");
    fetch(url.toString(), { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
      .then(function (html) { body.innerHTML = html; body.setAttribute("data-refreshed", String(Date.now())); })
      .catch(function () { /* keep the last good view; the next tick tries again */ });
  }
  window.setInterval(refresh, seconds * 1000);
})();
