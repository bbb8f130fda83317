// Credibility history charts. Each <canvas data-credibility-chart="ID"> is drawn from the
// JSON data block <script type="application/json" id="ID"> next to it: {points: [{t, score,
// level}], levels: [{level, from}]}. No inline scripts (CSP).
(function () {
  "use strict";
  if (typeof Chart === "undefined") {
    return;
  }
  const brand = getComputedStyle(document.documentElement).getPropertyValue("--brand").trim() || "#0b5cad";
  const dateFormat = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric" });

  document.querySelectorAll("canvas[data-credibility-chart]").forEach(function (canvas) {
    const source = document.getElementById(canvas.dataset.credibilityChart);
    if (!source) {
      return;
    }
    let data;
    try {
      data = JSON.parse(source.textContent);
    } catch (error) {
      return;
    }
    const points = data.points || [];
    if (points.length < 2) {
      return;
    }
    const labels = points.map(function (p) { return dateFormat.format(new Date(p.t)); });
    const scores = points.map(function (p) { return p.score; });
    // Level floors as dashed guide lines (AAA 90, AA 80, ...), without the C floor at 0.
    const guides = (data.levels || []).filter(function (l) { return l.from > 0; }).map(function (l) {
      return {
        type: "line", label: l.level + " from " + l.from, data: points.map(function () { return l.from; }),
        borderColor: "rgba(108, 117, 125, 0.45)", borderDash: [4, 4], borderWidth: 1, pointRadius: 0,
        fill: false, stepped: false,
      };
    });
    new Chart(canvas, {
      data: {
        labels: labels,
        datasets: [{
          type: "line", label: "Score", data: scores, borderColor: brand, backgroundColor: brand,
          stepped: "before", pointRadius: 3, borderWidth: 2,
        }].concat(guides),
      },
      options: {
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        scales: { y: { min: 0, max: 100, ticks: { stepSize: 10 } } },
        plugins: {
          legend: { display: false },
          tooltip: {
            filter: function (item) { return item.datasetIndex === 0; },
            callbacks: {
              label: function (ctx) { return "Score " + ctx.parsed.y + " (" + points[ctx.dataIndex].level + ")"; },
            },
          },
        },
      },
    });
  });
})();
