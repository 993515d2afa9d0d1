/**
 * Browser side of the live table: upserts rows into the server-rendered <tbody> by eventId, keeping
 * newest (by lastUpdatedAt, as the BFF orders them) first and at most `limit` rows. Plain DOM, text only (no innerHTML).
 */
import type { PipelineEvent } from "../api/types";
import { timestampMs } from "./format";
import { rowCells } from "./row-model";

export function buildRow(doc: Document, e: PipelineEvent): HTMLTableRowElement {
  const tr = doc.createElement("tr");
  tr.dataset.eventId = e.eventId;
  for (const c of rowCells(e)) {
    const td = doc.createElement("td");
    td.className = c.cls;
    if (c.title) td.title = c.title;
    if (c.status !== undefined) td.dataset.status = c.status;
    if (c.badge) {
      const span = doc.createElement("span");
      span.className = c.badge;
      span.textContent = c.text;
      td.append(span);
    } else if (c.datetime !== undefined) {
      const time = doc.createElement("time");
      time.dateTime = c.datetime;
      time.textContent = c.text;
      td.append(time);
    } else {
      td.textContent = c.text;
    }
    tr.append(td);
  }
  return tr;
}

/** A row's lastUpdatedAt, read back from its <time datetime>. */
function rowTime(tr: HTMLTableRowElement): number {
  return timestampMs(tr.querySelector("time")?.dateTime);
}

function eventRows(tbody: HTMLElement): HTMLTableRowElement[] {
  return Array.from(tbody.querySelectorAll<HTMLTableRowElement>(":scope > tr[data-event-id]"));
}

/** Returns the number of event rows after the upsert. */
export function upsertRows(tbody: HTMLElement, events: PipelineEvent[], limit: number): number {
  const doc = tbody.ownerDocument;
  const byId = new Map(eventRows(tbody).map((tr) => [tr.dataset.eventId!, tr]));
  // oldest first, so that among equal timestamps the response's (newest-first) order wins
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i];
    byId.get(e.eventId)?.remove();
    const row = buildRow(doc, e);
    row.classList.add("fresh");
    const key = timestampMs(e.lastUpdatedAt);
    // new rows are usually the newest, so this scan normally stops at the first row
    const before = eventRows(tbody).find((tr) => rowTime(tr) <= key) ?? null;
    tbody.insertBefore(row, before);
    byId.set(e.eventId, row);
  }
  const rows = eventRows(tbody);
  for (const tr of rows.slice(limit)) tr.remove();
  if (rows.length > 0) tbody.querySelector(":scope > tr.empty-row")?.remove();
  return Math.min(rows.length, limit);
}
