// Draws each report table marked with a chart as bars or a line (Chart.js, installed by the set-up).
// The table stays the figures: the chart is a picture of it, hidden from screen readers, which read the table.
(function () {
  "use strict";
  var palette = ["#1d5c8c", "#d98c1f", "#3a8f5c", "#a23b5e", "#6b5ca5", "#7a7a7a"];

  function number(text) {
    var value = parseFloat(String(text).replace(/[£,%\s]/g, ""));
    return isNaN(value) ? null : value;  // a hidden count ("<5") is left out, not drawn as 0
  }

  function draw(holder) {
    var table = document.getElementById(holder.getAttribute("data-chart-for"));
    if (!table || typeof window.Chart === "undefined") { return; }
    var headings = Array.prototype.map.call(table.tHead.rows[0].cells, function (cell) { return cell.textContent.trim(); });
    var rows = Array.prototype.filter.call(table.tBodies[0].rows, function (row) {
      return row.cells[0].textContent.trim() !== "Total";
    });
    var labels = rows.map(function (row) { return row.cells[0].textContent.trim(); });
    var datasets = headings.slice(1).filter(function (h) { return h !== "Total"; }).map(function (heading, i) {
      var colour = palette[i % palette.length];
      return {
        label: heading,
        data: rows.map(function (row) { return number(row.cells[i + 1].textContent); }),
        backgroundColor: colour,
        borderColor: colour
      };
    });
    var canvas = document.createElement("canvas");
    canvas.setAttribute("aria-hidden", "true");
    holder.appendChild(canvas);
    holder.hidden = false;
    new window.Chart(canvas, {
      type: holder.getAttribute("data-chart") === "line" ? "line" : "bar",
      data: { labels: labels, datasets: datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: { legend: { display: datasets.length > 1 } },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } }
      }
    });
  }

  function drawAll() { document.querySelectorAll("[data-chart-for]").forEach(draw); }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", drawAll); } else { drawAll(); }
})();
