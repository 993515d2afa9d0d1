/**
 * The header's live part: event count, latest commit and the "live · updated HH:MM:SS" indicator.
 * Its props are primitives only, so the page serializes a handful of values, not the events.
 *
 * Once the document is ready it polls the BFF from the browser every POLL_MS, skipping ticks while
 * the tab is hidden: incremental since the latest commit (or, with no cursor yet, the newest `limit`
 * events), upserting the rows into the table. ("document-ready" rather than the default
 * "intersection-observer": a reload that restores a scrolled-down position must still go live.)
 */
import { component$, useSignal, useVisibleTask$ } from "@builder.io/qwik";
import type { EventsResponse } from "../api/types";
import { formatClock } from "../lib/format";
import { upsertRows } from "../lib/live-rows";
import { EVENTS_TBODY_ID } from "./events-table";

export const POLL_MS = 2000;
const REQUEST_TIMEOUT_MS = 5000;

export interface LiveStatusProps {
  /** The BFF as the browser reaches it (OBS_BFF_PUBLIC_URL). */
  publicBffUrl: string;
  /** latestCommit of the server-rendered snapshot, or null. */
  since: string | null;
  count: number;
  limit: number;
  /** When the server-rendered snapshot was fetched (ms since epoch); 0 if the server got none. */
  fetchedAt: number;
}

type LiveState = "snapshot" | "live" | "offline";

function liveText(state: LiveState, updatedAt: number): string {
  const at = updatedAt ? formatClock(updatedAt) : "";
  switch (state) {
    case "live":
      return `live · updated ${at}`;
    case "offline":
      return at ? `offline · retrying · last update ${at}` : "offline · retrying";
    default:
      return at ? `snapshot · ${at}` : "connecting…";
  }
}

export const LiveStatus = component$<LiveStatusProps>((props) => {
  const count = useSignal(props.count);
  const latestCommit = useSignal<string | null>(props.since);
  const state = useSignal<LiveState>("snapshot");
  const updatedAt = useSignal(props.fetchedAt);

  useVisibleTask$(({ cleanup }) => {
    const base = props.publicBffUrl;
    const limit = props.limit;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let inflight: AbortController | undefined;

    const poll = async () => {
      const tbody = document.getElementById(EVENTS_TBODY_ID);
      if (!tbody || document.visibilityState === "hidden") return;
      const url = latestCommit.value
        ? `${base}/api/events/incremental?since=${encodeURIComponent(latestCommit.value)}`
        : `${base}/api/events?limit=${limit}`;
      inflight = new AbortController();
      const t = setTimeout(() => inflight?.abort(), REQUEST_TIMEOUT_MS);
      try {
        const res = await fetch(url, {
          cache: "no-store",
          headers: { accept: "application/json" },
          signal: inflight.signal,
        });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const body = (await res.json()) as EventsResponse;
        if (stopped) return;
        if (!Array.isArray(body.events)) throw new Error("no events array");
        const events = body.events.filter((e) => typeof e?.eventId === "string");
        count.value = upsertRows(tbody, events, limit);
        if (body.latestCommit) latestCommit.value = body.latestCommit;
        document.getElementById("bff-error")?.remove();
        state.value = "live";
        updatedAt.value = Date.now();
      } catch {
        if (!stopped) state.value = "offline";
      } finally {
        clearTimeout(t);
      }
    };

    const loop = async () => {
      await poll();
      if (!stopped) timer = setTimeout(loop, POLL_MS);
    };
    loop();

    cleanup(() => {
      stopped = true;
      clearTimeout(timer);
      inflight?.abort();
    });
  }, { strategy: "document-ready" });

  return (
    <div class="live-status">
      <span class="stat" data-testid="event-count">
        {count.value} events
      </span>
      <span class="stat">
        latest commit <code data-testid="latest-commit">{latestCommit.value ?? "—"}</code>
      </span>
      <span class={`live live-${state.value}`} data-live-state={state.value} title="times in UTC">
        <span class="dot" aria-hidden="true" />
        {liveText(state.value, updatedAt.value)}
      </span>
    </div>
  );
});
