/**
 * Pure formatting helpers shared by the server-rendered table and the live updater in the browser,
 * so that a row looks the same whichever of them drew it.
 */
import { EVENT_STATUSES, type EventStatus } from "../api/types";

/** "2026-11-26T09:30:00.123Z" -> "2026-11-26 09:30:00.123" (UTC); unparseable input is shown as is. */
export function formatTimestamp(iso: string | null | undefined): string {
  if (!iso) return "";
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  return new Date(ms).toISOString().replace("T", " ").replace("Z", "");
}

/** Milliseconds since the epoch, for ordering rows; unparseable input sorts last. */
export function timestampMs(iso: string | null | undefined): number {
  const ms = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(ms) ? 0 : ms;
}

/** Hudi instant "20261126093000123" -> "2026-11-26 09:30:00.123" (UTC); anything else as is. */
export function formatInstant(instant: string | null | undefined): string {
  if (!instant) return "";
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{3})?$/.exec(instant);
  if (!m) return instant;
  return `${m[1]}-${m[2]}-${m[3]} ${m[4]}:${m[5]}:${m[6]}${m[7] ? "." + m[7] : ""}`;
}

/** HH:MM:SS in UTC, for the "updated" indicator. */
export function formatClock(ms: number): string {
  return new Date(ms).toISOString().slice(11, 19);
}

export function formatCount(n: number | null | undefined): string {
  return typeof n === "number" && Number.isFinite(n) ? n.toLocaleString("en-US") : "—";
}

export function isKnownStatus(s: string): s is EventStatus {
  return (EVENT_STATUSES as readonly string[]).includes(s);
}

/** CSS class of a status badge; an unknown status gets the neutral badge rather than breaking. */
export function statusClass(status: string): string {
  return isKnownStatus(status) ? `badge badge-${status.toLowerCase()}` : "badge badge-unknown";
}

/** "2026-11-26 09:30" (UTC) from an ISO time; for axes and compact labels. */
export function formatMinute(iso: string | number | null | undefined): string {
  if (iso === null || iso === undefined || iso === "") return "";
  const ms = typeof iso === "number" ? iso : Date.parse(iso);
  if (Number.isNaN(ms)) return String(iso);
  return new Date(ms).toISOString().slice(0, 16).replace("T", " ");
}

/** Hudi instant "20261126093000123" -> ms since the epoch (UTC), or NaN. */
export function instantMs(instant: string | null | undefined): number {
  const m = instant ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{3})?$/.exec(instant) : null;
  if (!m) return NaN;
  return Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6], m[7] ? +m[7] : 0);
}
