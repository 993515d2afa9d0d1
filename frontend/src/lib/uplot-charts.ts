/**
 * The interactive charts (uPlot), imported only by the chart island's visible task.
 */
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { type ChartData, METRICS } from "./chart-model";

export function mountCharts(host: HTMLElement, data: ChartData): () => void {
  const xs = data.xs.map((x) => x / 1000);
  const width = Math.min(420, Math.max(280, Math.floor((host.clientWidth || 1200) / 3) - 16));
  const plots = METRICS.map((m) => {
    const series = data.byMetric[m.key];
    const box = document.createElement("div");
    box.className = "chart-live";
    box.dataset.metric = m.key;
    host.append(box);
    return new uPlot(
      {
        title: m.label,
        width,
        height: 160,
        cursor: { sync: { key: "obs-stats" } },
        scales: { x: { time: true } },
        series: [{}, ...series.map((s) => ({ label: s.pipeline, stroke: s.color, width: 1.5 }))],
        axes: [{}, { size: 64 }],
      },
      [xs, ...series.map((s) => s.values)],
      box,
    );
  });
  return () => {
    for (const p of plots) p.destroy();
    host.replaceChildren();
  };
}
