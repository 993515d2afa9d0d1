/**
 * The open-alerts strip: one description of an alert's line, used by the server-rendered JSX
 * (components/alert-strip.tsx) and by the browser (AlertStripModel + renderAlertList below), so both draw the
 * same markup; and the browser's model of which alerts are open.
 *
 * The server renders GET /api/alerts?status=open. In the browser, the BFF's SSE `alert` events (an alert
 * opened, grew, was acknowledged or resolved) update it: an open alert is shown, anything else leaves the
 * strip. `alert` events have no SSE id, so on every (re)connect of the stream the strip reads
 * GET /api/alerts?status=open again (`resync`), keeping changes that arrived while that read was under way.
 * Plain DOM, text only (no innerHTML): summaries and names come from pipelines and are shown as text.
 */
import type { Alert, AlertList, StreamAlertMessage } from "../api/types";
import { formatTimestamp } from "./format";
import { atFailureHref, journeyHref } from "./row-model";

/** Alerts listed in the strip; more are counted ("+ N more"). */
export const ALERTS_SHOWN = 20;
/** Document events by which the live timeline (the page's one stream) hands alert changes to the strip. */
export const ALERT_EVENT = "obs:alert";
export const ALERT_RESYNC_EVENT = "obs:alerts-resync";
export const IDS = { strip: "alerts", list: "alert-list", count: "alert-count", more: "alert-more", empty: "alert-empty" } as const;

export interface AlertLine {
  id: number;
  severity: string;
  rule: string;
  where: string;
  summary: string;
  count: string;
  lastSeen: string;
  lastSeenText: string;
  /** The dashboard's own pages for the alert's links (GET /api/alerts `links`): null when it has none. */
  atFailure: string | null;
  journey: string | null;
}

export function alertLine(a: Alert): AlertLine {
  return {
    id: a.id,
    severity: a.severity,
    rule: a.rule,
    where: a.stage ? `${a.pipeline} / ${a.stage}` : a.pipeline,
    summary: a.summary,
    count: a.count > 1 ? `×${a.count}` : "",
    lastSeen: a.lastSeen,
    lastSeenText: formatTimestamp(a.lastSeen),
    atFailure: a.eventId && (a.links.atFailure || a.links.eventPage) ? atFailureHref(a.eventId) : null,
    journey: a.correlationId && (a.links.journey || a.links.journeyPage) ? journeyHref(a.correlationId) : null,
  };
}

export function buildAlertItem(doc: Document, a: Alert): HTMLElement {
  const l = alertLine(a);
  const li = doc.createElement("li");
  li.className = `alert-item sev-${l.severity}`;
  li.dataset.alertId = String(l.id);
  li.dataset.rule = l.rule;
  const span = (cls: string, text: string, title?: string) => {
    const s = doc.createElement("span");
    s.className = cls;
    s.textContent = text;
    if (title) s.title = title;
    li.append(s, " ");
  };
  span(`badge sev sev-${l.severity}`, l.severity);
  span("alert-rule", l.rule);
  span("alert-where", l.where, l.where);
  span("alert-summary", l.summary, l.summary);
  if (l.count) span("alert-times", l.count);
  const time = doc.createElement("time");
  time.className = "alert-time";
  time.dateTime = l.lastSeen;
  time.textContent = l.lastSeenText;
  li.append(time);
  for (const [href, cls, text] of [[l.atFailure, "alert-at-failure", "state at failure"], [l.journey, "alert-journey", "journey"]] as const) {
    if (!href) continue;
    const link = doc.createElement("a");
    link.className = cls;
    link.href = href;
    link.textContent = text;
    li.append(" ", link);
  }
  return li;
}

const RANK: Record<string, number> = { open: 0, acknowledged: 1, resolved: 2 };

/** Whether `b` is not older than `a` (same alert): status only moves forward, count and lastSeen only grow. */
function notOlder(a: Alert, b: Alert): boolean {
  const [ra, rb] = [RANK[a.status] ?? 0, RANK[b.status] ?? 0];
  if (ra !== rb) return rb > ra;
  return b.count >= a.count && Date.parse(b.lastSeen) >= Date.parse(a.lastSeen);
}

export class AlertStripModel {
  private alerts = new Map<number, Alert>();
  private touched: Set<number> | null = null;
  private round = 0;
  /** Open alerts beyond those listed in the last full read (GET ?limit= ALERTS_SHOWN). */
  private unlisted = 0;

  constructor(initial: AlertList | null) {
    if (initial) {
      for (const a of initial.alerts) this.alerts.set(a.id, a);
      this.unlisted = Math.max(0, initial.total - initial.alerts.length);
    }
  }

  /** An SSE `alert` event. */
  apply(msg: StreamAlertMessage): void {
    const a = msg.alert;
    const old = this.alerts.get(a.id);
    if (old && !notOlder(old, a)) return;
    this.alerts.set(a.id, a);
    this.touched?.add(a.id);
    if (!old && a.status !== "open" && this.unlisted > 0) this.unlisted--; // one we did not list left
  }

  /** Start a full read; `done` takes its answer. */
  begin(): number {
    this.touched = new Set();
    return ++this.round;
  }

  done(round: number, list: AlertList): void {
    if (round !== this.round) return; // a newer read is under way
    const listed = new Set(list.alerts.map((a) => a.id));
    for (const a of list.alerts) {
      const old = this.alerts.get(a.id);
      if (!old || (notOlder(old, a) && !this.touched?.has(a.id))) this.alerts.set(a.id, a);
    }
    // open here, not open there: acknowledged or resolved meanwhile (unless an event said otherwise since)
    for (const [id, a] of this.alerts) if (a.status === "open" && !listed.has(id) && !this.touched?.has(id)) this.alerts.delete(id);
    this.unlisted = Math.max(0, list.total - list.alerts.length);
    this.touched = null;
  }

  /** The open alerts, newest first, at most ALERTS_SHOWN; and how many more are open. */
  open(): { shown: Alert[]; more: number } {
    const open = [...this.alerts.values()].filter((a) => a.status === "open").sort((x, y) => y.id - x.id);
    return { shown: open.slice(0, ALERTS_SHOWN), more: Math.max(0, open.length - ALERTS_SHOWN) + this.unlisted };
  }
}

/** Redraw the strip's list, count and "more" line from the model. */
export function renderAlertStrip(doc: Document, model: AlertStripModel): void {
  const list = doc.getElementById(IDS.list);
  if (!list) return;
  const { shown, more } = model.open();
  const frag = doc.createDocumentFragment();
  for (const a of shown) frag.append(buildAlertItem(doc, a));
  list.replaceChildren(frag);
  const total = shown.length + more;
  const count = doc.getElementById(IDS.count);
  if (count) count.textContent = String(total);
  const strip = doc.getElementById(IDS.strip);
  if (strip) strip.dataset.open = String(total);
  const moreEl = doc.getElementById(IDS.more);
  if (moreEl) moreEl.textContent = more ? `+ ${more} more` : "";
  const empty = doc.getElementById(IDS.empty);
  if (empty) empty.hidden = total > 0;
}
