/**
 * The timeline's view as a URL: parsing the page's query into filters, the BFF query that answers it, and
 * the same filters applied in the browser to live rows (the stream sends every changed row).
 *
 * URL parameters (all optional; `pipeline`, `stage` and `status` repeatable):
 *   pipeline, stage, status, from, to (ISO-8601 or a datetime-local value, UTC), q (text in the error
 *   message), correlationId, as_of (time travel: a commit instant or a time), limit (rows kept, 1..10000).
 */
import { EVENT_STATUSES, type EventStatus, type TimelineEvent } from "../api/types";
import { timestampMs } from "./format";

export const DEFAULT_WINDOW = 5000;
export const MAX_WINDOW = 10_000;

export interface Filters {
  pipelines: string[];
  stages: string[];
  statuses: EventStatus[];
  from: string | null;
  to: string | null;
  q: string | null;
  correlationId: string | null;
  asOf: string | null;
  limit: number;
  /** Parameters given but not understood, for a warning on the page. */
  ignored: string[];
}

const clean = (v: string | null) => (v && v.trim() ? v.trim().slice(0, 200) : null);

function many(params: URLSearchParams, name: string): string[] {
  return [...new Set(params.getAll(name).flatMap((v) => v.split(",")).map((v) => v.trim()).filter(Boolean))].slice(0, 50);
}

/** A datetime-local value ("2026-11-26T08:00") is UTC here; ISO strings pass through. */
export function normalizeTime(value: string | null): string | null {
  const v = clean(value);
  if (!v) return null;
  return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(v) ? `${v}Z` : v;
}

export function parseFilters(params: URLSearchParams): Filters {
  const ignored: string[] = [];
  const statuses: EventStatus[] = [];
  for (const s of many(params, "status")) {
    const up = s.toUpperCase();
    if ((EVENT_STATUSES as readonly string[]).includes(up)) statuses.push(up as EventStatus);
    else ignored.push(`status=${s}`);
  }
  const asked = Number.parseInt(params.get("limit") ?? "", 10);
  return {
    pipelines: many(params, "pipeline"),
    stages: many(params, "stage"),
    statuses,
    from: normalizeTime(params.get("from")),
    to: normalizeTime(params.get("to")),
    q: clean(params.get("q")),
    correlationId: clean(params.get("correlationId")),
    asOf: clean(params.get("as_of")),
    limit: Number.isFinite(asked) ? Math.min(Math.max(asked, 1), MAX_WINDOW) : DEFAULT_WINDOW,
    ignored,
  };
}

/** The BFF query for these filters (without paging and time travel, which callers add). */
export function bffFilterParams(f: Filters): URLSearchParams {
  const p = new URLSearchParams();
  for (const v of f.pipelines) p.append("pipeline", v);
  for (const v of f.stages) p.append("stage", v);
  for (const v of f.statuses) p.append("status", v);
  if (f.from) p.set("from", f.from);
  if (f.to) p.set("to", f.to);
  if (f.q) p.set("q", f.q);
  if (f.correlationId) p.set("correlationId", f.correlationId);
  return p;
}

/** The page URL for these filters with some changed (links: time travel steps, a batch, back to live). */
export function pageHref(f: Filters, change: Partial<Filters> = {}): string {
  const g = { ...f, ...change };
  const p = bffFilterParams(g);
  if (g.asOf) p.set("as_of", g.asOf);
  if (g.limit !== DEFAULT_WINDOW) p.set("limit", String(g.limit));
  const s = p.toString();
  return s ? `/?${s}` : "/";
}

export function hasFilters(f: Filters): boolean {
  return f.pipelines.length + f.stages.length + f.statuses.length > 0 || !!(f.from || f.to || f.q || f.correlationId);
}

/** Filters as the browser needs them for live rows: parsed back from the BFF query string (a primitive prop). */
export function filtersFromQuery(query: string): Filters {
  return parseFilters(new URLSearchParams(query));
}

/** Does a live row belong in the window? The BFF's rules: exact names, any listed status, `from` inclusive and
 * `to` exclusive on eventTimestamp, `q` a case-insensitive substring of errorMessage. */
export function matches(e: TimelineEvent, f: Filters): boolean {
  if (f.pipelines.length && !f.pipelines.includes(e.pipelineName)) return false;
  if (f.stages.length && !f.stages.includes(e.stageName)) return false;
  if (f.statuses.length && !f.statuses.includes(e.status)) return false;
  if (f.correlationId && e.correlationId !== f.correlationId) return false;
  const started = timestampMs(e.eventTimestamp);
  if (f.from && started < timestampMs(f.from)) return false;
  if (f.to && started >= timestampMs(f.to)) return false;
  if (f.q && !(e.errorMessage ?? "").toLowerCase().includes(f.q.toLowerCase())) return false;
  return true;
}
