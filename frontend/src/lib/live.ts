/**
 * Following the table live from the browser: the BFF's SSE stream, with incremental polling as the fallback.
 *
 * - A fresh connect passes `?since=<latest commit of the server-rendered page>`, so the commits that landed
 *   between the render and the connect are replayed; on a reconnect EventSource itself sends Last-Event-ID
 *   (each `commit` event's id is its instant), which the BFF prefers over `since`.
 * - `pending` (the BFF's live path): rows read from the bus before any commit holds them; no id, so a
 *   reconnect never resumes by them; the `commit` that later holds them replaces them.
 * - `alert` (an alert opened, grew, was acknowledged or resolved): no id either; `onReady` (each `ready`, i.e.
 *   each (re)connect) is the caller's cue to read the alerts again for what it may have missed.
 * - `reset` (the cursor fell behind the time-travel horizon): the caller reloads its state.
 * - If the stream cannot be had (MAX_SSE_ERRORS failures without a message in between, or EventSource
 *   closed for good), poll `/api/events/incremental?since=<cursor>` every POLL_MS (skipped while the tab
 *   is hidden) and try the stream again every SSE_RETRY_MS.
 */
import type { EventsResponse, PendingEvent, PipelineEvent, StreamAlertMessage, StreamPendingMessage } from "../api/types";

export type LiveState = "connecting" | "live" | "reconnecting" | "polling" | "offline";

export const POLL_MS = 2000;
export const SSE_RETRY_MS = 30_000;
const MAX_SSE_ERRORS = 3;
const REQUEST_TIMEOUT_MS = 5000;
/** The cursor before any commit (an empty table at render time): everything is new. */
const EPOCH_INSTANT = "19700101000000000";

export interface FollowOptions {
  base: string;
  since: string | null;
  onRows: (events: PipelineEvent[], commit: string | null) => void;
  /** Rows from the bus, not in a commit yet (SSE `pending` events). */
  onPending?: (events: PendingEvent[]) => void;
  /** Alert changes (SSE `alert` events). */
  onAlert?: (msg: StreamAlertMessage) => void;
  /** The stream (re)opened (SSE `ready`). */
  onReady?: () => void;
  onState: (state: LiveState) => void;
  onReset: () => void;
  /** Never use EventSource: poll from the start (`?live=poll`). */
  noSse?: boolean;
}

export function follow(opts: FollowOptions): () => void {
  let cursor = opts.since;
  let source: EventSource | null = null;
  let errors = 0;
  let stopped = false;
  let pollTimer: ReturnType<typeof setTimeout> | undefined;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  let polling = false;

  const advance = (commit: string | null) => {
    if (commit && (!cursor || commit > cursor)) cursor = commit;
  };

  const startSse = () => {
    if (stopped || typeof EventSource === "undefined" || opts.noSse) return startPolling();
    const url = `${opts.base}/api/stream${cursor ? `?since=${encodeURIComponent(cursor)}` : ""}`;
    const es = new EventSource(url);
    source = es;
    es.addEventListener("ready", () => {
      errors = 0;
      stopPolling();
      opts.onState("live");
      opts.onReady?.();
    });
    es.addEventListener("commit", (ev) => {
      errors = 0;
      const msg = JSON.parse((ev as MessageEvent<string>).data) as { commit: string; events: PipelineEvent[] };
      advance(msg.commit);
      opts.onRows(msg.events, msg.commit);
      opts.onState("live");
    });
    es.addEventListener("pending", (ev) => {
      errors = 0;
      const msg = JSON.parse((ev as MessageEvent<string>).data) as StreamPendingMessage;
      opts.onPending?.(msg.events);
    });
    es.addEventListener("alert", (ev) => {
      errors = 0;
      opts.onAlert?.(JSON.parse((ev as MessageEvent<string>).data) as StreamAlertMessage);
    });
    es.addEventListener("reset", () => opts.onReset());
    es.onerror = () => {
      errors++;
      if (es.readyState === EventSource.CLOSED || errors >= MAX_SSE_ERRORS) {
        es.close();
        source = null;
        startPolling();
      } else {
        opts.onState("reconnecting");
      }
    };
  };

  const poll = async () => {
    if (stopped) return;
    if (document.visibilityState !== "hidden") {
      const ctrl = new AbortController();
      const t = setTimeout(() => ctrl.abort(), REQUEST_TIMEOUT_MS);
      try {
        const res = await fetch(`${opts.base}/api/events/incremental?since=${encodeURIComponent(cursor ?? EPOCH_INSTANT)}`, {
          cache: "no-store", headers: { accept: "application/json" }, signal: ctrl.signal,
        });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const body = (await res.json()) as EventsResponse;
        if (stopped) return;
        advance(body.latestCommit);
        if (body.events.length) opts.onRows(body.events, body.latestCommit);
        opts.onState("polling");
      } catch {
        if (!stopped) opts.onState("offline");
      } finally {
        clearTimeout(t);
      }
    }
    if (!stopped && polling) pollTimer = setTimeout(poll, POLL_MS);
  };

  function startPolling() {
    if (stopped || polling) return;
    polling = true;
    opts.onState("polling");
    void poll();
    if (!opts.noSse && typeof EventSource !== "undefined") {
      retryTimer = setTimeout(() => {
        errors = 0;
        startSse();
      }, SSE_RETRY_MS);
    }
  }

  function stopPolling() {
    polling = false;
    clearTimeout(pollTimer);
    clearTimeout(retryTimer);
  }

  opts.onState("connecting");
  startSse();
  return () => {
    stopped = true;
    stopPolling();
    source?.close();
  };
}
