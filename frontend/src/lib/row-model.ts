/**
 * One description of a timeline row, used by the server-rendered JSX (components/timeline-rows.tsx) and by
 * the browser's window renderer (lib/timeline.ts), so both draw the same markup.
 */
import type { TimelineEvent } from "../api/types";
import { formatCount, formatInstant, formatTimestamp, statusClass } from "./format";

/** Every row is this tall (CSS .tl-row); the window renderer positions rows by it. */
export const ROW_HEIGHT = 28;

export interface CellSpec {
  cls: string;
  text: string;
  title?: string;
  /** status cell: data-status attribute and badge class */
  status?: string;
  badge?: string;
  /** time cell: <time datetime> */
  datetime?: string;
  /** the text is a link */
  href?: string;
  /** a second link after the text (a FAILED row's "state at failure") */
  link?: { href: string; text: string; cls: string };
}

export const COLUMNS: { label: string; cls: string }[] = [
  { label: "updated (UTC)", cls: "c-time" },
  { label: "pipeline", cls: "c-pipeline" },
  { label: "stage", cls: "c-stage" },
  { label: "status", cls: "c-status" },
  { label: "source", cls: "c-num" },
  { label: "processed", cls: "c-num" },
  { label: "error", cls: "c-error" },
  { label: "batch", cls: "c-corr" },
  { label: "commit", cls: "c-commit" },
];

export const journeyHref = (correlationId: string) => `/journeys/${encodeURIComponent(correlationId)}/`;
export const atFailureHref = (eventId: string) => `/events/${encodeURIComponent(eventId)}/at-failure/`;

/** A row from the live path: read from the bus, not in a commit yet. */
export const isPending = (e: TimelineEvent): boolean => e.commitTime === null;

export function rowCells(e: TimelineEvent): CellSpec[] {
  return [
    { cls: "c-time", text: formatTimestamp(e.lastUpdatedAt), datetime: e.lastUpdatedAt },
    { cls: "c-pipeline", text: e.pipelineName, title: e.pipelineName },
    { cls: "c-stage", text: e.stageName, title: e.stageName },
    {
      cls: "c-status", text: e.status, status: e.status, badge: statusClass(e.status),
      link: e.status === "FAILED" && e.commitTime !== null ? { href: atFailureHref(e.eventId), text: "at failure", cls: "at-failure" } : undefined,
    },
    { cls: "c-num", text: formatCount(e.sourceRecordCount) },
    { cls: "c-num", text: formatCount(e.processedRecordCount) },
    { cls: "c-error", text: e.errorMessage ?? "", title: e.errorMessage ?? undefined },
    { cls: "c-corr", text: e.correlationId, title: e.correlationId, href: journeyHref(e.correlationId) },
    e.commitTime === null
      ? { cls: "c-commit", text: "pending", badge: "pending-tag", title: "read from the bus; not in a commit yet" }
      : { cls: "c-commit", text: e.commitTime, title: formatInstant(e.commitTime) },
  ];
}
