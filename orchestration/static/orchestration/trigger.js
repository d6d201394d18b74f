/* The trigger form's live cost estimate and inline errors (issue 11). No inline scripts: this file only.
   On each change it asks the estimate endpoint (a GET that creates nothing) and shows what the run would read
   and bill, the data BigQuery holds, and the errors the form would give on submit. */
(function () {
  "use strict";
  var form = document.getElementById("trigger-form");
  if (!form || !form.dataset.estimateUrl) { return; }
  var text = document.getElementById("estimate-text");
  var data = document.getElementById("data-available");
  var timer = null;
  var sequence = 0;

  function size(n) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return (i === 0 ? n.toFixed(0) : n.toFixed(2)) + " " + units[i];
  }

  function showErrors(errors) {
    var lists = form.querySelectorAll("ul.live-errors");
    Array.prototype.forEach.call(lists, function (ul) {
      var messages = (errors && errors[ul.dataset.errorsFor]) || [];
      ul.textContent = "";
      messages.forEach(function (m) { var li = document.createElement("li"); li.textContent = m; ul.appendChild(li); });
      ul.hidden = messages.length === 0;
    });
  }

  function query() {
    var params = new URLSearchParams();
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.name.charAt(0) === "_" || el.name === "csrfmiddlewaretoken" || el.name === "dry_run") { return; }
      if ((el.type === "checkbox" || el.type === "radio") && !el.checked) { return; }
      params.append(el.name, el.value);
    });
    return params.toString();
  }

  function refresh() {
    var mine = ++sequence;
    text.textContent = "Estimating...";
    fetch(form.dataset.estimateUrl + "?" + query(), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (body) {
        if (mine !== sequence) { return; }
        if (body.data) {
          data.textContent = "Data in BigQuery: " + (body.data.first_day || "?") + " to " + (body.data.last_day || "?") +
            "; regions: " + (body.data.regions.join(", ") || "none") + ".";
        } else if (body.data_error) {
          data.textContent = "Could not ask BigQuery which data it holds: " + body.data_error;
        }
        showErrors(body.errors);
        if (!body.ok) {
          var general = (body.errors && body.errors.__all__) || [];
          text.textContent = "No estimate: " + (general.join(" ") || "correct the fields marked in red.");
          text.className = "help estimate-error";
          return;
        }
        text.className = "help";
        text.textContent = "Reads " + size(body.bytes_processed) + " (validation " + size(body.validation_bytes) +
          " + report " + size(body.report_bytes) + "), bills at least " + size(body.bytes_billed) + ": ~$" +
          Number(body.cost_usd).toFixed(4) + ". BigQuery bills every query at least " +
          size(body.min_bill_per_query_bytes) + "." + (body.over_limit ? " ABOVE the cost limit: it will be refused." : "");
      })
      .catch(function () { if (mine === sequence) { text.textContent = "The estimate could not be fetched."; } });
  }

  function later() { window.clearTimeout(timer); timer = window.setTimeout(refresh, 400); }
  form.addEventListener("change", later);
  form.addEventListener("input", later);
  refresh();
}());
