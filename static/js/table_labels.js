// Tables on small and large screens (static/css/portal.css). On a narrow screen each row is a
// card of "label: value" lines: each cell's label is its column's heading, copied here onto the
// cells that have none of their own. On a wide one a table too wide for the page (a very long
// word) scrolls inside a box of its own instead of the whole page. `portalTables(element)` does
// the same for tables put into the page later (the dashboard's live queue).
(function () {
  "use strict";
  function prepare(root) {
    root.querySelectorAll("table").forEach(function (table) {
      if (!table.parentNode.classList.contains("table-scroll")) {
        var box = document.createElement("div");
        box.className = "table-scroll";
        table.parentNode.insertBefore(box, table);
        box.appendChild(table);
      }
      var headings = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
        return th.textContent.trim();
      });
      if (!headings.length) return;
      table.querySelectorAll("tbody tr").forEach(function (row) {
        Array.prototype.forEach.call(row.children, function (cell, index) {
          if (!cell.hasAttribute("data-label") && headings[index] !== undefined) {
            cell.setAttribute("data-label", headings[index]);
          }
        });
      });
    });
  }
  window.portalTables = prepare;
  var main = document.querySelector("main");
  if (main) prepare(main);
})();
