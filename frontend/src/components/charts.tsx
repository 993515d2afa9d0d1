/**
 * Charts: server-rendered SVG for the first paint (no JS), then, once the charts scroll into view, uPlot
 * (dynamic import, ~50 KB raw / ~24 KB gzipped) over the same /api/stats query fetched by the browser.
 */
import { component$, Slot, useSignal, useVisibleTask$ } from "@builder.io/qwik";
import type { Stats } from "../api/types";
import { type ChartData, chartData, METRICS, polyline } from "../lib/chart-model";
import { formatCount, formatMinute } from "../lib/format";

const W = 360;
const H = 110;

/** The first paint: three small multiples, one line per pipeline, and a shared legend. */
export function StaticCharts({ stats, from, to }: { stats: Stats; from: string; to: string }) {
  const data: ChartData = chartData(stats, from, to);
  if (data.pipelines.length === 0) {
    return <p class="muted">No events between {formatMinute(from)} and {formatMinute(to)} (UTC).</p>;
  }
  return (
    <div class="charts-static">
      {METRICS.map((m) => {
        const series = data.byMetric[m.key];
        const max = Math.max(1, ...series.flatMap((s) => s.values));
        return (
          <figure class="chart" data-metric={m.key}>
            <figcaption>
              {m.label} <span class="muted">per {stats.bucket} · max {formatCount(max)}</span>
            </figcaption>
            <svg viewBox={`0 0 ${W} ${H}`} width={W} height={H} role="img" aria-label={`${m.label} per pipeline over time`}>
              <line x1="0" y1={H} x2={W} y2={H} class="axis" />
              {series.map((s) => (
                <polyline points={polyline(s.values, max, W, H - 2)} fill="none" stroke={s.color} stroke-width="1.5">
                  <title>{s.pipeline}</title>
                </polyline>
              ))}
            </svg>
            <div class="axis-labels muted">
              <span>{formatMinute(data.xs[0])}</span>
              <span>{formatMinute(data.xs[data.xs.length - 1])}</span>
            </div>
          </figure>
        );
      })}
      <ul class="legend">
        {data.byMetric.events.map((s) => (
          <li>
            <span class="swatch" style={{ background: s.color }} />
            {s.pipeline}
          </li>
        ))}
      </ul>
    </div>
  );
}

export interface ChartIslandProps {
  publicBffUrl: string;
  /** The /api/stats query the server used (bucket, from, to, pipeline). */
  statsQuery: string;
  from: string;
  to: string;
}

/** Swaps the static SVG for interactive uPlot charts once visible. Primitive props only. */
export const ChartIsland = component$<ChartIslandProps>((props) => {
  const host = useSignal<HTMLElement>();
  const mode = useSignal<"static" | "interactive" | "failed">("static");
  useVisibleTask$(async ({ cleanup }) => {
    let dispose: (() => void) | undefined;
    let stopped = false;
    cleanup(() => {
      stopped = true;
      dispose?.();
    });
    try {
      const [{ mountCharts }, res] = await Promise.all([
        import("../lib/uplot-charts"),
        fetch(`${props.publicBffUrl}/api/stats?${props.statsQuery}`, { headers: { accept: "application/json" } }),
      ]);
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const stats = (await res.json()) as Stats;
      if (stopped || !host.value) return;
      const data = chartData(stats, props.from, props.to);
      if (data.pipelines.length === 0) return;
      dispose = mountCharts(host.value, data);
      mode.value = "interactive";
    } catch {
      mode.value = "failed";
    }
  });
  return (
    <div class={`charts charts-${mode.value}`} data-charts={mode.value}>
      <div ref={host} class="charts-live" />
      <div class="charts-ssr">
        <Slot />
      </div>
    </div>
  );
});
