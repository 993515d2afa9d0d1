/**
 * The timeline's server-rendered markup: a header, a scroll box, a spacer as tall as every row of the
 * window, and the first rows. Plain functions, no `component$`: no state and no listeners of their own,
 * so the rows add nothing to the page's serialized state. lib/timeline.ts redraws #tl-rows in the browser.
 */
import type { PipelineEvent } from "../api/types";
import { COLUMNS, ROW_HEIGHT, rowCells } from "../lib/row-model";
import { IDS } from "../lib/timeline";

/** A plain function, not a component: no per-row component boundary in the HTML. */
export function timelineRow(e: PipelineEvent) {
  return (
    <div key={e.eventId} class="tl-row" role="row" data-event-id={e.eventId} data-status={e.status}>
      {rowCells(e).map((c) => (
        <span class={`c ${c.cls}`} role="cell" title={c.title} data-status={c.status}>
          {c.badge ? (
            <span class={c.badge}>{c.text}</span>
          ) : c.datetime !== undefined ? (
            <time dateTime={c.datetime}>{c.text}</time>
          ) : c.href ? (
            <a href={c.href}>{c.text}</a>
          ) : (
            c.text
          )}
          {c.link && (
            <>
              {" "}
              <a href={c.link.href} class={c.link.cls}>
                {c.link.text}
              </a>
            </>
          )}
        </span>
      ))}
    </div>
  );
}

export const TimelineHead = () => (
  <div class="tl-head" role="row">
    {COLUMNS.map((c) => (
      <span class={`c ${c.cls}`} role="columnheader">
        {c.label}
      </span>
    ))}
  </div>
);

/** The rows the server sends: the first screenful; `total` sizes the spacer for the rest. */
export const TimelineBody = ({ events, total, emptyText }: { events: PipelineEvent[]; total: number; emptyText: string }) => (
  <div id={IDS.space} class="tl-space" style={{ height: `${Math.max(total, 1) * ROW_HEIGHT}px` }}>
    <div id={IDS.rows} class="tl-rows">
      {events.length === 0 ? <div class="tl-empty">{emptyText}</div> : events.map(timelineRow)}
    </div>
  </div>
);
