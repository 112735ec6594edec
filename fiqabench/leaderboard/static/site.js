// The leaderboard site's only script: sortable tables and the sample browser's verdict filter.
// Hand-written and bundled with the site; it fetches nothing, so pages work from file://.
(function () {
  "use strict";

  // Missing values (empty data-sort-value) sort last in both directions.
  function compare(a, b, numeric) {
    if (a === "" || b === "") {
      return a === b ? 0 : a === "" ? 1 : -1;
    }
    if (numeric) {
      return parseFloat(a) - parseFloat(b);
    }
    return a.localeCompare(b, undefined, { numeric: true, sensitivity: "base" });
  }

  function sortTable(table, header) {
    var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
    var index = headers.indexOf(header);
    var numeric = header.getAttribute("data-type") === "number";
    var current = header.getAttribute("aria-sort");
    var direction;
    if (current === "ascending") {
      direction = "descending";
    } else if (current === "descending") {
      direction = "ascending";
    } else {
      direction = header.getAttribute("data-first") || "ascending";
    }
    var sign = direction === "ascending" ? 1 : -1;
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).map(function (row, position) {
      return { row: row, key: row.cells[index].getAttribute("data-sort-value") || "", position: position };
    });
    rows.sort(function (a, b) {
      var order = compare(a.key, b.key, numeric);
      if (a.key !== "" && b.key !== "") {
        order *= sign;
      }
      return order || a.position - b.position;
    });
    rows.forEach(function (item) {
      body.appendChild(item.row);
    });
    headers.forEach(function (other) {
      other.setAttribute("aria-sort", other === header ? direction : "none");
    });
  }

  function filterRows(select) {
    var table = document.getElementById(select.getAttribute("data-target"));
    var wanted = select.value;
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
      row.hidden = wanted !== "" && row.getAttribute("data-verdict") !== wanted;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("table.sortable").forEach(function (table) {
      table.querySelectorAll("thead th button.sort").forEach(function (button) {
        button.addEventListener("click", function () {
          sortTable(table, button.parentNode);
        });
      });
    });
    document.querySelectorAll("select.verdict-filter").forEach(function (select) {
      select.addEventListener("change", function () {
        filterRows(select);
      });
    });
  });
})();
