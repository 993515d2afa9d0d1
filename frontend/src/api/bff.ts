/**
 * Server-side access to the BFF. Route loaders import this; the URLs come from the environment of the
 * running server at request time (never baked in at build time).
 */
import type {
  AlertList, CommitList, DeadLetterList, EventAtFailure, EventsResponse, Journey, Maintenance, PipelineEvent, Stats,
} from "./types";

export const DEFAULT_BFF_URL = "http://127.0.0.1:8080";
export const DEFAULT_DAGSTER_URL = "http://127.0.0.1:3000";
export const BFF_TIMEOUT_MS = 5000;

type EnvGetter = { get(key: string): string | undefined };

function trimSlash(url: string): string {
  return url.replace(/\/+$/, "");
}

/** OBS_BFF_URL: where this server reaches the BFF. */
export function serverBffUrl(env: EnvGetter): string {
  return trimSlash(env.get("OBS_BFF_URL")?.trim() || DEFAULT_BFF_URL);
}

/** OBS_BFF_TOKEN: the BFF's bearer token. It stays on this server: never rendered, never sent to a browser. */
export function bffToken(env: EnvGetter): string | null {
  return env.get("OBS_BFF_TOKEN")?.trim() || null;
}

/** Where this server calls the BFF, with its credentials. */
export interface BffTarget {
  url: string;
  headers: Record<string, string>;
}

export function serverBff(env: EnvGetter): BffTarget {
  const token = bffToken(env);
  return { url: serverBffUrl(env), headers: token ? { authorization: `Bearer ${token}` } : {} };
}

/** Where the browser proxies to the BFF when auth is on: this server's own origin (see entry.node-server). */
export const BROWSER_PROXY_PATH = "/bff";

/**
 * OBS_BFF_PUBLIC_URL: where the operator's browser reaches the BFF (defaults to OBS_BFF_URL). With
 * OBS_BFF_TOKEN set, the browser goes through this server's same-origin proxy instead, which adds the token;
 * the browser holds only an HttpOnly cookie, never the token.
 */
export function publicBffUrl(env: EnvGetter): string {
  if (bffToken(env)) return BROWSER_PROXY_PATH;
  return trimSlash(env.get("OBS_BFF_PUBLIC_URL")?.trim() || serverBffUrl(env));
}

/** OBS_DAGSTER_URL: the Dagster webserver, linked from the maintenance panel. */
export function dagsterUrl(env: EnvGetter): string {
  return trimSlash(env.get("OBS_DAGSTER_URL")?.trim() || DEFAULT_DAGSTER_URL);
}

/** A failed BFF call: `status` is the HTTP status (0 when there was no answer), `detail` the BFF's words. */
export class BffError extends Error {
  constructor(message: string, readonly status = 0, readonly parameter: string | null = null) {
    super(message);
  }
}

function isEvent(x: unknown): x is PipelineEvent {
  const e = x as PipelineEvent;
  return typeof e === "object" && e !== null && typeof e.eventId === "string" && typeof e.status === "string";
}

/** Checks the envelope; drops (rather than renders) rows that lack an eventId or a status. */
export function parseEventsResponse(body: unknown): EventsResponse {
  const b = body as Partial<EventsResponse> | null;
  if (typeof b !== "object" || b === null || !Array.isArray(b.events)) {
    throw new BffError("unexpected response shape (no events array)");
  }
  return {
    events: b.events.filter(isEvent),
    latestCommit: typeof b.latestCommit === "string" ? b.latestCommit : null,
    total: typeof b.total === "number" ? b.total : b.events.length,
    asOf: typeof b.asOf === "string" ? b.asOf : null,
  };
}

export type Query = URLSearchParams | Record<string, string | number | undefined>;

function queryString(query?: Query): string {
  if (!query) return "";
  const params = query instanceof URLSearchParams ? query : new URLSearchParams(
    Object.entries(query).filter((kv): kv is [string, string | number] => kv[1] !== undefined)
      .map(([k, v]) => [k, String(v)]));
  const s = params.toString();
  return s ? `?${s}` : "";
}

/** GET {base}{path}?{query} as JSON. Throws BffError on any failure, with the BFF's `detail` when it gave one. */
export async function getJson<T>(target: BffTarget | string, path: string, query?: Query): Promise<T> {
  const { url: base, headers } = typeof target === "string" ? { url: target, headers: {} } : target;
  const url = `${base}${path}${queryString(query)}`;
  let res: Response;
  try {
    res = await fetch(url, { headers: { accept: "application/json", ...headers }, signal: AbortSignal.timeout(BFF_TIMEOUT_MS) });
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (e as Error).name ?? String(e);
    if (why === "TimeoutError") throw new BffError(`no answer within ${BFF_TIMEOUT_MS} ms`);
    if (why === "bad port") throw new BffError("bad port: fetch refuses to connect to this port");
    throw new BffError(why);
  }
  if (!res.ok) {
    let detail = `HTTP ${res.status}`;
    let parameter: string | null = null;
    try {
      const body = (await res.json()) as { detail?: unknown; parameter?: unknown };
      if (typeof body.detail === "string") detail = body.detail;
      if (typeof body.parameter === "string") parameter = body.parameter;
    } catch {
      // not JSON: keep the status
    }
    throw new BffError(detail, res.status, parameter);
  }
  try {
    return (await res.json()) as T;
  } catch {
    throw new BffError(`invalid JSON from ${path}`);
  }
}

/** GET /api/events, newest first. */
export async function fetchEvents(base: BffTarget | string, query: Query): Promise<EventsResponse> {
  return parseEventsResponse(await getJson<unknown>(base, "/api/events", query));
}

export const fetchCommits = (base: BffTarget | string, limit: number) => getJson<CommitList>(base, "/api/commits", { limit });
export const fetchStats = (base: BffTarget | string, query: Query) => getJson<Stats>(base, "/api/stats", query);
export const fetchMaintenance = (base: BffTarget | string) => getJson<Maintenance>(base, "/api/maintenance");
export const fetchDeadLetters = (base: BffTarget | string, limit: number) =>
  getJson<DeadLetterList>(base, "/api/dead-letters", { limit });
export const fetchAtFailure = (base: BffTarget | string, eventId: string, limit: number) =>
  getJson<EventAtFailure>(base, `/api/events/${encodeURIComponent(eventId)}/at-failure`, { limit });
export const fetchJourney = (base: BffTarget | string, correlationId: string) =>
  getJson<Journey>(base, `/api/correlations/${encodeURIComponent(correlationId)}`);

/** GET /api/alerts?status=open: the alerts nobody has acknowledged or resolved, newest first. */
export const fetchOpenAlerts = (base: BffTarget | string, limit: number) =>
  getJson<AlertList>(base, "/api/alerts", { status: "open", limit });

/** Settles a call into {ok, value} | {ok: false, error} so one failing panel never breaks the page. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: string; status: number };

export async function settle<T>(promise: Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await promise };
  } catch (e) {
    return { ok: false, error: e instanceof BffError ? e.message : String(e), status: e instanceof BffError ? e.status : 0 };
  }
}
