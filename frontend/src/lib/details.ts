/**
 * The row-click handler's work: select the clicked row and show it in the details panel (#event-detail),
 * with links to its batch's journey, its state at failure (FAILED rows), and the timeline of its batch.
 * From the loaded window when it has the event (every field), else from the row's own cells.
 */
import type { TimelineEvent } from "../api/types";
import { formatCount, formatTimestamp } from "./format";
import { atFailureHref, journeyHref } from "./row-model";
import { IDS, currentWindow } from "./timeline";

type Field = [label: string, value: string];

function fieldsFromRow(row: HTMLElement): { id: string; status: string; corr: string; fields: Field[] } {
  const cell = (cls: string) => row.querySelector<HTMLElement>(`.${cls}`);
  const text = (cls: string) => cell(cls)?.title || cell(cls)?.textContent?.trim() || "";
  const nums = row.querySelectorAll<HTMLElement>(".c-num");
  return {
    id: row.dataset.eventId ?? "",
    status: row.dataset.status ?? "",
    corr: text("c-corr"),
    fields: [
      ["pipeline / stage", `${text("c-pipeline")} / ${text("c-stage")}`],
      ["status", row.dataset.status ?? ""],
      ["updated (UTC)", text("c-time")],
      ["source → processed", `${nums[0]?.textContent ?? "—"} → ${nums[1]?.textContent ?? "—"}`],
      ["error", text("c-error")],
      ["commit", cell("c-commit")?.textContent ?? ""],
    ],
  };
}

function fieldsFromEvent(e: TimelineEvent): Field[] {
  return [
    ["pipeline / stage", `${e.pipelineName} / ${e.stageName}`],
    ["status", e.status],
    ["started (UTC)", formatTimestamp(e.eventTimestamp)],
    ["updated (UTC)", formatTimestamp(e.lastUpdatedAt)],
    ["source → processed", `${formatCount(e.sourceRecordCount)} → ${formatCount(e.processedRecordCount)}`],
    ["error", e.errorMessage ?? ""],
    ["data quality", e.dataQualityScore === null || e.dataQualityScore === undefined ? "" : String(e.dataQualityScore)],
    ["attributes", Object.entries(e.attributes ?? {}).map(([k, v]) => `${k}=${v}`).join(", ")],
    ["schema version", e.schemaVersion ? `v${e.schemaVersion}` : ""],
    ["commit", e.commitTime ?? "pending: read from the bus, not in a commit yet"],
  ];
}

function link(doc: Document, href: string, text: string, cls = ""): HTMLAnchorElement {
  const a = doc.createElement("a");
  a.href = href;
  a.textContent = text;
  if (cls) a.className = cls;
  return a;
}

/** Returns true when it handled the click (a row, not a link inside it). */
export function showDetails(ev: Event): boolean {
  const target = ev.target as HTMLElement | null;
  if (!target || target.closest("a")) return false;
  const row = target.closest<HTMLElement>("[data-event-id]");
  const panel = document.getElementById(IDS.detail);
  if (!row || !panel) return false;
  const doc = row.ownerDocument;
  for (const r of doc.querySelectorAll(`#${IDS.rows} .selected`)) r.classList.remove("selected");
  row.classList.add("selected");
  const fromRow = fieldsFromRow(row);
  const window = currentWindow();
  window?.select(fromRow.id);
  const event = window?.event(fromRow.id);
  const fields = event ? fieldsFromEvent(event) : fromRow.fields;
  const head = doc.createElement("h2");
  head.textContent = fromRow.id;
  const dl = doc.createElement("dl");
  for (const [label, value] of fields) {
    if (!value) continue;
    const dt = doc.createElement("dt");
    dt.textContent = label;
    const dd = doc.createElement("dd");
    dd.textContent = value;
    dl.append(dt, dd);
  }
  const links = doc.createElement("p");
  links.className = "detail-links";
  links.append(link(doc, journeyHref(fromRow.corr), `journey of batch ${fromRow.corr}`));
  links.append(" · ", link(doc, `/?correlationId=${encodeURIComponent(fromRow.corr)}`, "only this batch"));
  if (fromRow.status === "FAILED") links.append(" · ", link(doc, atFailureHref(fromRow.id), "state at failure", "at-failure"));
  panel.replaceChildren(head, dl, links);
  panel.dataset.eventId = fromRow.id;
  panel.hidden = false;
  return true;
}
