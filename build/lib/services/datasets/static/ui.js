// limr web view: draw the server's Plotly figures and wire the threshold control. No network calls.
"use strict";

function drawPlots() {
  for (const el of document.querySelectorAll("div.plot[data-figure]")) {
    const fig = JSON.parse(el.dataset.figure);
    Plotly.newPlot(el, fig.data, fig.layout, { displaylogo: false, responsive: true });
  }
}

// The kept count for a threshold: exact on the server's 0.01 grid (threshold-data), the grid the slider uses.
function wireThreshold() {
  const slider = document.getElementById("threshold");
  const data = document.getElementById("threshold-data");
  if (!slider || !data) return;
  const table = JSON.parse(data.textContent);
  const scored = Number(document.getElementById("scored-count").textContent);
  const link = document.getElementById("kept-link");
  const update = () => {
    const t = Number(slider.value);
    let i = table.thresholds.findIndex((x) => x >= t - 1e-9);
    if (i < 0) i = table.thresholds.length - 1;
    const kept = table.kept[i];
    document.getElementById("threshold-value").textContent = t.toFixed(2);
    document.getElementById("kept-count").textContent = String(kept);
    document.getElementById("kept-share").textContent = scored ? ((100 * kept) / scored).toFixed(1) : "0.0";
    link.href = link.href.replace(/min_score=[^&]*/, "min_score=" + t.toFixed(2));
    const hist = document.getElementById("histogram");
    if (hist && hist.layout) Plotly.relayout(hist, { "shapes[0].x0": t, "shapes[0].x1": t });
  };
  slider.addEventListener("input", update);
  update();
}

document.addEventListener("DOMContentLoaded", () => {
  drawPlots();
  wireThreshold();
});
