/**
 * The timeline's live part: the count, the latest commit and the connection state, and (in the browser,
 * once the timeline is visible) the window renderer and the live feed. Its props are primitives only, so
 * the page serializes a handful of values, never the events (QwikDev/qwik#5173); the rows themselves are
 * the server-rendered children (<Slot/>), which lib/timeline.ts takes over.
 */
import { component$, Slot, useSignal, useVisibleTask$ } from "@builder.io/qwik";
import { ALERT_EVENT, ALERT_RESYNC_EVENT } from "../lib/alerts";
import { formatClock } from "../lib/format";
import { follow, type LiveState } from "../lib/live";
import { setCurrentWindow, TimelineWindow } from "../lib/timeline";

export interface LiveTimelineProps {
  /** The BFF as the browser reaches it (OBS_BFF_PUBLIC_URL). */
  publicBffUrl: string;
  /** The BFF filter query of this view (no paging, no as_of). */
  filterQuery: string;
  /** The commit the server-rendered rows reflect (null: empty table). */
  asOf: string | null;
  /** Newest commit of the table when rendered: the live feed's starting cursor. */
  latestCommit: string | null;
  /** Time travel: a past view, not followed live. */
  timeTravel: boolean;
  /** Rows in the window (matching the filters, at most `cap`), and how many match in all. */
  total: number;
  matching: number;
  cap: number;
  /** When the server fetched the rows (ms since epoch). */
  renderedAt: number;
  /** `?live=poll`: poll instead of using the stream (the fallback path, on purpose). */
  pollOnly: boolean;
}

type State = LiveState | "time-travel";

/** While the stream is down (polling), the alerts strip reads GET /api/alerts this often. */
const ALERT_POLL_MS = 10_000;

function stateText(state: State, updatedAt: number): string {
  const at = updatedAt ? formatClock(updatedAt) : "";
  switch (state) {
    case "live":
      return `live · stream · updated ${at}`;
    case "polling":
      return `live · polling every 2 s · updated ${at}`;
    case "reconnecting":
      return "reconnecting…";
    case "offline":
      return at ? `offline · retrying · last update ${at}` : "offline · retrying";
    case "time-travel":
      return "time travel · not live";
    default:
      return "connecting…";
  }
}

export const LiveTimeline = component$<LiveTimelineProps>((props) => {
  const shown = useSignal(props.total);
  const latest = useSignal<string | null>(props.latestCommit);
  const state = useSignal<State>(props.timeTravel ? "time-travel" : "connecting");
  const updatedAt = useSignal(props.renderedAt);
  const problem = useSignal("");

  useVisibleTask$(({ cleanup }) => {
    const win = new TimelineWindow(document, {
      publicBffUrl: props.publicBffUrl,
      filterQuery: props.filterQuery,
      asOf: props.asOf,
      total: props.total,
      cap: props.cap,
      onCount: (n) => (shown.value = n),
      onError: (message) => (problem.value = message),
    });
    setCurrentWindow(win);
    const detach = win.attach();
    // the rows below the first screen, when the browser has nothing better to do
    const idle = window.requestIdleCallback
      ? window.requestIdleCallback(() => win.ensureLoaded(), { timeout: 3000 })
      : window.setTimeout(() => win.ensureLoaded(), 1500);
    // the open-alerts strip (components/alert-strip.tsx) follows the same stream: its changes, and a cue to
    // read the alerts again on each (re)connect and, while polling, every ALERT_POLL_MS
    let alertsReadAt = 0;
    const resyncAlerts = () => {
      alertsReadAt = Date.now();
      document.dispatchEvent(new CustomEvent(ALERT_RESYNC_EVENT));
    };
    const stop = props.timeTravel
      ? () => {}
      : follow({
          base: props.publicBffUrl,
          since: props.latestCommit,
          noSse: props.pollOnly,
          onRows: (events, commit) => {
            win.upsert(events);
            if (commit) latest.value = commit;
            updatedAt.value = Date.now();
          },
          onPending: (events) => {
            win.upsertPending(events);
            updatedAt.value = Date.now();
          },
          onAlert: (msg) => {
            document.dispatchEvent(new CustomEvent(ALERT_EVENT, { detail: msg }));
          },
          onReady: resyncAlerts,
          onState: (s) => {
            state.value = s;
            if (s === "polling" && Date.now() - alertsReadAt >= ALERT_POLL_MS) resyncAlerts();
            if (s === "live" || s === "polling") document.getElementById("bff-error")?.remove();
          },
          onReset: () => location.reload(),
        });
    cleanup(() => {
      stop();
      detach();
      if (window.cancelIdleCallback) window.cancelIdleCallback(idle);
      else clearTimeout(idle);
      setCurrentWindow(null);
    });
  });

  return (
    <section class="timeline" aria-label="Pipeline events">
      <div class="tl-bar">
        <span class="stat" data-testid="event-count">
          {shown.value.toLocaleString("en-US")} events
          {props.matching > props.cap ? ` (newest of ${props.matching.toLocaleString("en-US")} matching)` : ""}
        </span>
        <span class="stat">
          latest commit <code data-testid="latest-commit">{latest.value ?? "—"}</code>
        </span>
        <span class={`live live-${state.value}`} data-live-state={state.value} title="times in UTC">
          <span class="dot" aria-hidden="true" />
          {stateText(state.value, updatedAt.value)}
        </span>
        {problem.value && <span class="stat warn">{problem.value}</span>}
      </div>
      <Slot />
    </section>
  );
});
