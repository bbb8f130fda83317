// Monitors' console: charts drawn from the JSON data block the page carries
// (<script type="application/json" id="console-chart-data">); no inline scripts.
(function () {
  "use strict";
  const source = document.getElementById("console-chart-data");
  if (!source || typeof Chart === "undefined") {
    return;
  }
  const data = JSON.parse(source.textContent);
  // Words come from the server (data.text), in the page's language: no catalogue in JS.
  const text = data.text || { gmv: "GMV", orders: "Orders placed", gmv_tooltip: "GMV {amount}", orders_tooltip: "{count} orders" };
  const fill = (template, values) => String(template).replace(/\{(\w+)\}/g, (all, key) => (key in values ? values[key] : all));
  Chart.defaults.animation = false; // figures for monitors: draw at once, no motion
  const brand = getComputedStyle(document.documentElement).getPropertyValue("--brand").trim() || "#0b5cad";
  const palette = ["#0b5cad", "#f0ad4e", "#198754", "#dc3545", "#6f42c1", "#20c997", "#fd7e14",
    "#0dcaf0", "#6c757d", "#d63384", "#343a40", "#adb5bd"];
  // zh-CN writes "¥1,000" like the rest of the site (not "CN¥"); whole yuan on the axis.
  const money = new Intl.NumberFormat("zh-CN", { style: "currency", currency: data.currency || "CNY", maximumFractionDigits: 0 });

  const gmv = document.getElementById("chart-gmv");
  if (gmv) {
    new Chart(gmv, {
      data: {
        labels: data.labels,
        datasets: [
          { type: "bar", label: text.gmv, data: data.gmv, backgroundColor: brand, yAxisID: "y", order: 2 },
          { type: "line", label: text.orders, data: data.orders, borderColor: "#f0ad4e", backgroundColor: "#f0ad4e",
            yAxisID: "y1", tension: 0.25, order: 1 },
        ],
      },
      options: {
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          y: { beginAtZero: true, position: "left", ticks: { precision: 0, callback: (v) => money.format(v) } },
          y1: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false }, ticks: { precision: 0 } },
        },
        plugins: { tooltip: { callbacks: { label: (ctx) => ctx.dataset.yAxisID === "y" ? fill(text.gmv_tooltip, { amount: money.format(ctx.parsed.y) }) : fill(text.orders_tooltip, { count: ctx.parsed.y }) } } },
      },
    });
  }

  const doughnut = (id, series) => {
    const canvas = document.getElementById(id);
    if (!canvas || !series) {
      return;
    }
    const labels = [];
    const values = [];
    series.labels.forEach((label, i) => {
      if (series.values[i]) {
        labels.push(label);
        values.push(series.values[i]);
      }
    });
    if (!values.length) {
      canvas.closest(".console-chart").classList.add("d-none");
      return;
    }
    new Chart(canvas, {
      type: "doughnut",
      data: { labels, datasets: [{ data: values, backgroundColor: palette }] },
      options: { maintainAspectRatio: false, plugins: { legend: { position: "right" } } },
    });
  };
  doughnut("chart-states", data.states);
  doughnut("chart-categories", data.categories);
})();
