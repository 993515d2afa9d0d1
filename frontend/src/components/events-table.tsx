/**
 * The events table, server-rendered. Plain functions and an inline component, no `component$`: no
 * state and no listeners, so they add nothing to the page's serialized state. The live updater
 * (live-status.tsx) later edits the <tbody id="events-body"> directly.
 */
import type { PipelineEvent } from "../api/types";
import { COLUMNS, rowCells } from "../lib/row-model";

export const EVENTS_TBODY_ID = "events-body";

/** A plain function, not a component: no per-row component boundary (`<!--qv-->`) in the HTML. */
function eventRow(event: PipelineEvent) {
  return (
    <tr key={event.eventId} data-event-id={event.eventId}>
      {rowCells(event).map((c) => (
        <td class={c.cls} title={c.title} data-status={c.status}>
          {c.badge ? (
            <span class={c.badge}>{c.text}</span>
          ) : c.datetime !== undefined ? (
            <time dateTime={c.datetime}>{c.text}</time>
          ) : (
            c.text
          )}
        </td>
      ))}
    </tr>
  );
}

export const EventsTable = ({ events }: { events: PipelineEvent[] }) => (
  <table class="events">
    <thead>
      <tr>
        {COLUMNS.map((c) => (
          <th class={c.cls} scope="col">
            {c.label}
          </th>
        ))}
      </tr>
    </thead>
    <tbody id={EVENTS_TBODY_ID}>
      {events.length === 0 ? (
        <tr class="empty-row">
          <td colSpan={COLUMNS.length}>No events yet.</td>
        </tr>
      ) : (
        events.map(eventRow)
      )}
    </tbody>
  </table>
);
