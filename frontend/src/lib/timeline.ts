/**
 * Browser side of the timeline: a window over thousands of rows that lays out only what is on screen.
 *
 * The server renders the first rows (components/timeline-rows.tsx) inside a spacer as tall as all the
 * window's rows (ROW_HEIGHT each), so the scrollbar is right from the first paint. The full window is
 * fetched from the BFF only when needed (first scroll, first live change, or when the browser is idle),
 * pinned to the commit the server rendered (`as_of`) so the pages agree; from then on only the rows in
 * view (plus an overscan) exist in the DOM, redrawn on scroll. Live rows are upserted by eventId, newest
 * `lastUpdatedAt` first (the BFF's order), and a row that stops matching the filters leaves the window.
 * Pending rows (the BFF's live path: read from the bus, not in a commit yet) go in the same way, marked
 * pending, when newer than the row shown; the committed row replaces them when its commit arrives, unless
 * the pending one is newer still (the newest lastUpdatedAt wins, as in the table).
 * Plain DOM, text only (no innerHTML).
 */
import type { EventsResponse, PendingEvent, PipelineEvent, TimelineEvent } from "../api/types";
import { type Filters, filtersFromQuery, matches } from "./filters";
import { timestampMs } from "./format";
import { isPending, ROW_HEIGHT, rowCells } from "./row-model";

export const IDS = { scroll: "tl-scroll", space: "tl-space", rows: "tl-rows", detail: "event-detail" } as const;
const OVERSCAN = 12;
const FRESH_MS = 2500;

export interface WindowOptions {
  publicBffUrl: string;
  /** BFF filter query (no paging, no as_of). */
  filterQuery: string;
  /** The commit the server-rendered rows reflect; the full window is fetched as of it. */
  asOf: string | null;
  total: number;
  cap: number;
  onCount?: (shown: number, total: number) => void;
  onError?: (message: string) => void;
}

export function buildRow(doc: Document, e: TimelineEvent, selected: boolean, fresh: boolean): HTMLElement {
  const row = doc.createElement("div");
  const pending = isPending(e);
  row.className = "tl-row" + (selected ? " selected" : "") + (fresh ? " fresh" : "") + (pending ? " pending" : "");
  row.setAttribute("role", "row");
  row.dataset.eventId = e.eventId;
  row.dataset.status = e.status;
  if (pending) row.dataset.pending = "true";
  for (const c of rowCells(e)) {
    const cell = doc.createElement("span");
    cell.className = `c ${c.cls}`;
    cell.setAttribute("role", "cell");
    if (c.title) cell.title = c.title;
    if (c.status !== undefined) cell.dataset.status = c.status;
    if (c.badge) {
      const span = doc.createElement("span");
      span.className = c.badge;
      span.textContent = c.text;
      cell.append(span);
    } else if (c.datetime !== undefined) {
      const time = doc.createElement("time");
      time.dateTime = c.datetime;
      time.textContent = c.text;
      cell.append(time);
    } else if (c.href) {
      const a = doc.createElement("a");
      a.href = c.href;
      a.textContent = c.text;
      cell.append(a);
    } else {
      cell.textContent = c.text;
    }
    if (c.link) {
      const a = doc.createElement("a");
      a.href = c.link.href;
      a.className = c.link.cls;
      a.textContent = c.link.text;
      cell.append(" ", a);
    }
    row.append(cell);
  }
  return row;
}

/** Index at which an event with this lastUpdatedAt goes: before the first row not newer than it. */
function insertionIndex(rows: TimelineEvent[], ms: number): number {
  let lo = 0;
  let hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (timestampMs(rows[mid].lastUpdatedAt) > ms) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class TimelineWindow {
  private rows: TimelineEvent[] | null = null;
  private loading: Promise<void> | null = null;
  private waiting: { events: TimelineEvent[]; pending: boolean }[] = [];
  private fresh = new Map<string, number>();
  private drawn = "";
  private frame = 0;
  private filters: Filters;
  private total: number;
  selectedId: string | null = null;

  constructor(private doc: Document, private opts: WindowOptions) {
    this.filters = filtersFromQuery(opts.filterQuery);
    this.total = opts.total;
  }

  private el(id: string): HTMLElement | null {
    return this.doc.getElementById(id);
  }

  get loaded(): boolean {
    return this.rows !== null;
  }

  /** The event shown in a row, once the window is loaded. */
  event(eventId: string): TimelineEvent | undefined {
    return this.rows?.find((e) => e.eventId === eventId);
  }

  /** Start listening to scrolls; returns the cleanup. */
  attach(): () => void {
    const scroller = this.el(IDS.scroll);
    if (!scroller) return () => {};
    const onScroll = () => {
      if (!this.rows) void this.ensureLoaded();
      this.schedule();
    };
    scroller.addEventListener("scroll", onScroll, { passive: true });
    const onResize = () => this.schedule();
    window.addEventListener("resize", onResize, { passive: true });
    return () => {
      scroller.removeEventListener("scroll", onScroll);
      window.removeEventListener("resize", onResize);
      cancelAnimationFrame(this.frame);
    };
  }

  /** Fetch the whole window (as of the server-rendered commit), once. */
  ensureLoaded(): Promise<void> {
    if (this.rows) return Promise.resolve();
    this.loading ??= this.fetchWindow().then(
      (rows) => {
        this.rows = rows;
        for (const batch of this.waiting.splice(0)) this.apply(batch.events, batch.pending);
        this.total = this.rows.length;
        this.drawn = "";
        this.schedule();
      },
      (e) => {
        this.loading = null;
        this.opts.onError?.(`could not load the rows below: ${String(e)}`);
      },
    );
    return this.loading;
  }

  private async fetchWindow(): Promise<PipelineEvent[]> {
    const p = new URLSearchParams(this.opts.filterQuery);
    p.set("limit", String(this.opts.cap));
    if (this.opts.asOf) p.set("as_of", this.opts.asOf);
    const res = await fetch(`${this.opts.publicBffUrl}/api/events?${p}`, { headers: { accept: "application/json" } });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const body = (await res.json()) as EventsResponse;
    return body.events;
  }

  /** Live rows (a commit's changes): upsert by eventId, keep the filters and the cap. */
  upsert(events: PipelineEvent[]): void {
    this.offer(events, false);
  }

  /** Rows from the bus that no commit holds yet: shown marked pending when newer than the row shown. */
  upsertPending(events: PendingEvent[]): void {
    this.offer(events, true);
  }

  private offer(events: TimelineEvent[], pending: boolean): void {
    if (!events.length) return;
    if (!this.rows) {
      this.waiting.push({ events, pending });
      void this.ensureLoaded();
      return;
    }
    this.apply(events, pending);
    this.schedule();
  }

  private apply(incoming: TimelineEvent[], pending: boolean): void {
    const rows = this.rows!;
    const now = Date.now();
    const shown = new Map(rows.map((r) => [r.eventId, r]));
    // the newest lastUpdatedAt wins: a pending row only over an older row; a committed row over anything but
    // a newer pending row (whose own commit is still to come)
    const events = incoming.filter((e) => {
      const old = shown.get(e.eventId);
      if (!old) return true;
      const [was, is] = [timestampMs(old.lastUpdatedAt), timestampMs(e.lastUpdatedAt)];
      return pending ? is > was : !(isPending(old) && was > is);
    });
    if (!events.length) return;
    const changed = new Set(events.map((e) => e.eventId));
    for (let i = rows.length - 1; i >= 0; i--) if (changed.has(rows[i].eventId)) rows.splice(i, 1);
    // oldest first, so that among equal timestamps the newest-first order of the answer wins
    for (let i = events.length - 1; i >= 0; i--) {
      const e = events[i];
      if (!matches(e, this.filters)) continue;
      rows.splice(insertionIndex(rows, timestampMs(e.lastUpdatedAt)), 0, e);
      this.fresh.set(e.eventId, now);
    }
    if (rows.length > this.opts.cap) rows.length = this.opts.cap;
    this.total = rows.length;
    this.drawn = "";
  }

  select(eventId: string | null): void {
    this.selectedId = eventId;
    this.drawn = "";
    this.schedule();
  }

  private schedule(): void {
    cancelAnimationFrame(this.frame);
    this.frame = requestAnimationFrame(() => this.draw());
  }

  /** Lay out the rows in view (plus overscan) and size the spacer to the whole window. */
  draw(): void {
    const rows = this.rows;
    const scroller = this.el(IDS.scroll);
    const space = this.el(IDS.space);
    const body = this.el(IDS.rows);
    if (!rows || !scroller || !space || !body) return;
    const view = Math.ceil(scroller.clientHeight / ROW_HEIGHT);
    const first = Math.max(0, Math.floor(scroller.scrollTop / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(rows.length, first + view + 2 * OVERSCAN);
    const key = `${first}:${last}:${rows.length}`;
    if (key === this.drawn) return;
    this.drawn = key;
    space.style.height = `${Math.max(rows.length, 1) * ROW_HEIGHT}px`;
    body.style.transform = `translateY(${first * ROW_HEIGHT}px)`;
    const now = Date.now();
    const frag = this.doc.createDocumentFragment();
    for (let i = first; i < last; i++) {
      const e = rows[i];
      const at = this.fresh.get(e.eventId);
      frag.append(buildRow(this.doc, e, e.eventId === this.selectedId, at !== undefined && now - at < FRESH_MS));
    }
    if (rows.length === 0) {
      const empty = this.doc.createElement("div");
      empty.className = "tl-empty";
      empty.textContent = "No events match.";
      frag.append(empty);
    }
    body.replaceChildren(frag);
    this.opts.onCount?.(rows.length, this.total);
  }
}

/** The page's one window, shared by the live task and the row-click handler (same module instance). */
let current: TimelineWindow | null = null;
export const setCurrentWindow = (w: TimelineWindow | null) => (current = w);
export const currentWindow = () => current;
