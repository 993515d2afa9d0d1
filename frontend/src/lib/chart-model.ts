/**
 * Charts of /api/stats: events, failures and records processed per pipeline over time. One model for the
 * server-rendered SVG (first paint) and the interactive uPlot charts (loaded once the charts are visible).
 */
import type { Stats, StatsBucketSize } from "../api/types";

export const METRICS = [
  { key: "events", label: "events" },
  { key: "failures", label: "failures (currently FAILED)" },
  { key: "recordsProcessed", label: "records processed" },
] as const;
export type MetricKey = (typeof METRICS)[number]["key"];

export const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"];

const BUCKET_MS: Record<StatsBucketSize, number> = { "1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000 };
export const DEFAULT_SPAN_MS = 6 * 3_600_000;

/** The chart's range and bucket: the filters' from/to, else the 6 hours up to `anchor` (as_of or now). */
export function chartRange(from: string | null, to: string | null, anchorMs: number): { from: string; to: string; bucket: StatsBucketSize } {
  const end = to ? Date.parse(to) : anchorMs;
  const start = from ? Date.parse(from) : end - DEFAULT_SPAN_MS;
  const span = Math.max(end - start, 60_000);
  const bucket: StatsBucketSize = span <= 2 * 3_600_000 ? "1m" : span <= 8 * 3_600_000 ? "5m" : span <= 36 * 3_600_000 ? "15m" : "1h";
  return { from: new Date(start).toISOString(), to: new Date(end).toISOString(), bucket };
}

export interface ChartSeries {
  pipeline: string;
  color: string;
  values: number[];
}

export interface ChartData {
  /** bucket starts, ms since epoch, ascending, every bucket of the range */
  xs: number[];
  pipelines: string[];
  byMetric: Record<MetricKey, ChartSeries[]>;
}

export function chartData(stats: Stats, from: string, to: string): ChartData {
  const size = BUCKET_MS[stats.bucket];
  const start = Math.floor(Date.parse(from) / size) * size;
  const end = Date.parse(to);
  const xs: number[] = [];
  for (let t = start; t < end && xs.length < 2000; t += size) xs.push(t);
  const pipelines = [...new Set(stats.buckets.map((b) => b.pipelineName))].sort();
  const index = new Map(xs.map((x, i) => [x, i]));
  const byMetric = {} as Record<MetricKey, ChartSeries[]>;
  for (const m of METRICS) {
    byMetric[m.key] = pipelines.map((p, i) => ({ pipeline: p, color: PALETTE[i % PALETTE.length], values: xs.map(() => 0) }));
  }
  const seriesIndex = new Map(pipelines.map((p, i) => [p, i]));
  for (const b of stats.buckets) {
    const xi = index.get(Date.parse(b.bucketStart));
    const si = seriesIndex.get(b.pipelineName);
    if (xi === undefined || si === undefined) continue;
    for (const m of METRICS) byMetric[m.key][si].values[xi] += b[m.key];
  }
  return { xs, pipelines, byMetric };
}

/** SVG polyline points for one series in a w x h box (y up), given the metric's max. */
export function polyline(values: number[], max: number, w: number, h: number): string {
  const n = values.length;
  if (n === 0) return "";
  const dx = n > 1 ? w / (n - 1) : 0;
  return values.map((v, i) => `${(i * dx).toFixed(1)},${(h - (max ? (v / max) * h : 0)).toFixed(1)}`).join(" ");
}
