/* The sync target form shows the fields of the chosen source only (issue 11). No inline scripts: this file only. */
(function () {
  "use strict";
  var NEEDS = { bigquery: ["source_query"], database: ["source_database", "source_query"], file: ["source_file"] };
  function rowOf(name) {
    var input = document.querySelector("[data-source-field='" + name + "']");
    return input ? input.closest(".form-row") : null;
  }
  function update(select) {
    var wanted = NEEDS[select.value] || ["source_query", "source_database", "source_file"];
    ["source_query", "source_database", "source_file"].forEach(function (name) {
      var row = rowOf(name);
      if (row) { row.hidden = wanted.indexOf(name) < 0; }
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var select = document.getElementById("id_source_kind");
    if (!select) { return; }
    select.addEventListener("change", function () { update(select); });
    update(select);
  });
}());
