/**
 * Server-side access to the BFF. Only the route loader imports this; the URL comes from the
 * environment of the running server at request time (never baked in at build time).
 */
import type { EventsResponse, PipelineEvent } from "./types";

export const DEFAULT_BFF_URL = "http://127.0.0.1:8080";
export const BFF_TIMEOUT_MS = 5000;

type EnvGetter = { get(key: string): string | undefined };

function trimSlash(url: string): string {
  return url.replace(/\/+$/, "");
}

/** OBS_BFF_URL: where this server reaches the BFF. */
export function serverBffUrl(env: EnvGetter): string {
  return trimSlash(env.get("OBS_BFF_URL")?.trim() || DEFAULT_BFF_URL);
}

/** OBS_BFF_PUBLIC_URL: where the operator's browser reaches the BFF (defaults to OBS_BFF_URL). */
export function publicBffUrl(env: EnvGetter): string {
  return trimSlash(env.get("OBS_BFF_PUBLIC_URL")?.trim() || serverBffUrl(env));
}

export class BffError extends Error {}

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
  };
}

/** GET {base}/api/events?limit=N, newest first. Throws BffError on any failure. */
export async function fetchEvents(base: string, limit: number): Promise<EventsResponse> {
  const url = `${base}/api/events?limit=${limit}`;
  let res: Response;
  try {
    res = await fetch(url, {
      headers: { accept: "application/json" },
      signal: AbortSignal.timeout(BFF_TIMEOUT_MS),
    });
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (e as Error).name ?? String(e);
    if (why === "TimeoutError") throw new BffError(`no answer within ${BFF_TIMEOUT_MS} ms`);
    if (why === "bad port") throw new BffError("bad port: fetch refuses to connect to this port");
    throw new BffError(why);
  }
  if (!res.ok) {
    throw new BffError(`HTTP ${res.status} from ${url}`);
  }
  try {
    return parseEventsResponse(await res.json());
  } catch (e) {
    throw new BffError(e instanceof BffError ? e.message : `invalid JSON from ${url}`);
  }
}
