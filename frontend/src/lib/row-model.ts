/**
 * One description of a table row, used by the server-rendered JSX (components/events-table.tsx)
 * and by the live updater's DOM builder (lib/live-rows.ts), so both draw the same markup.
 */
import type { PipelineEvent } from "../api/types";
import { formatCount, formatInstant, formatTimestamp, statusClass } from "./format";

export interface CellSpec {
  cls: string;
  text: string;
  title?: string;
  /** status cell: data-status attribute and badge class */
  status?: string;
  badge?: string;
  /** time cell: <time datetime> */
  datetime?: string;
}

export const COLUMNS: { label: string; cls: string }[] = [
  { label: "updated (UTC)", cls: "c-time" },
  { label: "pipeline", cls: "c-pipeline" },
  { label: "stage", cls: "c-stage" },
  { label: "status", cls: "c-status" },
  { label: "source", cls: "c-num" },
  { label: "processed", cls: "c-num" },
  { label: "error", cls: "c-error" },
  { label: "correlation id", cls: "c-corr" },
  { label: "commit", cls: "c-commit" },
];

export function rowCells(e: PipelineEvent): CellSpec[] {
  return [
    { cls: "c-time", text: formatTimestamp(e.lastUpdatedAt), datetime: e.lastUpdatedAt },
    { cls: "c-pipeline", text: e.pipelineName },
    { cls: "c-stage", text: e.stageName },
    { cls: "c-status", text: e.status, status: e.status, badge: statusClass(e.status) },
    { cls: "c-num", text: formatCount(e.sourceRecordCount) },
    { cls: "c-num", text: formatCount(e.processedRecordCount) },
    { cls: "c-error", text: e.errorMessage ?? "", title: e.errorMessage ?? undefined },
    { cls: "c-corr", text: e.correlationId, title: e.correlationId },
    { cls: "c-commit", text: e.commitTime, title: formatInstant(e.commitTime) },
  ];
}
