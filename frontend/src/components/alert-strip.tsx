/**
 * The open-alerts strip at the top of the dashboard: server-rendered from GET /api/alerts?status=open (through
 * the server's BFF client, so it works with auth on), then kept current in the browser from the stream's
 * `alert` events, which the live timeline (the page's one SSE connection) hands over as document events;
 * on every (re)connect of that stream it reads the list again (lib/alerts.ts). Each alert links to the
 * dashboard's state-at-failure and journey pages. Text only.
 */
import { component$, useVisibleTask$ } from "@builder.io/qwik";
import type { AlertList, StreamAlertMessage } from "../api/types";
import {
  ALERT_EVENT, ALERT_RESYNC_EVENT, ALERTS_SHOWN, alertLine, AlertStripModel, IDS, renderAlertStrip,
} from "../lib/alerts";

export interface AlertStripProps {
  /** The BFF as the browser reaches it (the /bff proxy when auth is on). */
  publicBffUrl: string;
  /** GET /api/alerts?status=open as the server read it (null: it could not). */
  initial: AlertList | null;
  error: string | null;
}

export const AlertStrip = component$<AlertStripProps>((props) => {
  useVisibleTask$(
    ({ cleanup }) => {
      const model = new AlertStripModel(props.initial);
      const onAlert = (ev: Event) => {
        model.apply((ev as CustomEvent<StreamAlertMessage>).detail);
        renderAlertStrip(document, model);
      };
      const onResync = async () => {
        const round = model.begin();
        try {
          const res = await fetch(`${props.publicBffUrl}/api/alerts?status=open&limit=${ALERTS_SHOWN}`, {
            cache: "no-store", headers: { accept: "application/json" },
          });
          if (!res.ok) return;
          model.done(round, (await res.json()) as AlertList);
          document.getElementById("alert-error")?.remove();
          renderAlertStrip(document, model);
        } catch {
          // the stream's own state line says when the BFF is unreachable
        }
      };
      document.addEventListener(ALERT_EVENT, onAlert);
      document.addEventListener(ALERT_RESYNC_EVENT, onResync);
      cleanup(() => {
        document.removeEventListener(ALERT_EVENT, onAlert);
        document.removeEventListener(ALERT_RESYNC_EVENT, onResync);
      });
    },
    { strategy: "document-ready" },
  );

  const alerts = props.initial?.alerts ?? [];
  const more = props.initial ? Math.max(0, props.initial.total - alerts.length) : 0;
  const total = alerts.length + more;
  return (
    <section id={IDS.strip} class="alert-strip" aria-label="Open alerts" data-open={String(total)}>
      <h2 class="alert-title">
        Open alerts <span id={IDS.count} class="alert-n" data-testid="open-alerts">{total}</span>
      </h2>
      {props.error && (
        <p id="alert-error" class="warn">Alerts unavailable: {props.error}</p>
      )}
      <ul id={IDS.list} class="alert-list" aria-live="polite">
        {alerts.map((a) => {
          const l = alertLine(a);
          return (
            <li key={l.id} class={`alert-item sev-${l.severity}`} data-alert-id={String(l.id)} data-rule={l.rule}>
              <span class={`badge sev sev-${l.severity}`}>{l.severity}</span>{" "}
              <span class="alert-rule">{l.rule}</span>{" "}
              <span class="alert-where" title={l.where}>{l.where}</span>{" "}
              <span class="alert-summary" title={l.summary}>{l.summary}</span>{" "}
              {l.count && <><span class="alert-times">{l.count}</span>{" "}</>}
              <time class="alert-time" dateTime={l.lastSeen}>{l.lastSeenText}</time>
              {l.atFailure && <>{" "}<a class="alert-at-failure" href={l.atFailure}>state at failure</a></>}
              {l.journey && <>{" "}<a class="alert-journey" href={l.journey}>journey</a></>}
            </li>
          );
        })}
      </ul>
      <p id={IDS.more} class="muted alert-more">{more ? `+ ${more} more` : ""}</p>
      <p id={IDS.empty} class="muted alert-empty" hidden={total > 0}>No open alerts.</p>
    </section>
  );
});
