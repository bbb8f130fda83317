// Credibility history charts. Each <canvas data-credibility-chart="ID"> is drawn from the
// JSON data block <script type="application/json" id="ID"> next to it: {points: [{t, score,
// level}], levels: [{level, from}]}. No inline scripts (CSP).
(function () {
  "use strict";
  if (typeof Chart === "undefined") {
    return;
  }
  const brand = getComputedStyle(document.documentElement).getPropertyValue("--brand").trim() || "#0b5cad";
  const dateFormat = new Intl.DateTimeFormat(document.documentElement.lang || undefined, { year: "numeric", month: "short", day: "numeric" });
  // Words come from the server in the data block (data.text), in the page's language.
  function fill(template, values) {
    return String(template).replace(/\{(\w+)\}/g, function (all, key) { return key in values ? values[key] : all; });
  }

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
    const text = data.text || { score: "Score", guide: "{level} from {score}", tooltip: "Score {score} ({level})" };
    if (points.length < 2) {
      return;
    }
    const labels = points.map(function (p) { return dateFormat.format(new Date(p.t)); });
    const scores = points.map(function (p) { return p.score; });
    // Level floors as dashed guide lines (AAA 90, AA 80, ...), without the C floor at 0.
    const guides = (data.levels || []).filter(function (l) { return l.from > 0; }).map(function (l) {
      return {
        type: "line", label: fill(text.guide, { level: l.level, score: l.from }), data: points.map(function () { return l.from; }),
        borderColor: "rgba(108, 117, 125, 0.45)", borderDash: [4, 4], borderWidth: 1, pointRadius: 0,
        fill: false, stepped: false,
      };
    });
    new Chart(canvas, {
      data: {
        labels: labels,
        datasets: [{
          type: "line", label: text.score, data: scores, borderColor: brand, backgroundColor: brand,
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
              label: function (ctx) { return fill(text.tooltip, { score: ctx.parsed.y, level: points[ctx.dataIndex].level }); },
            },
          },
        },
      },
    });
  });
})();
