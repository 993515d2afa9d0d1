/**
 * The view form: filters and time travel as a plain GET form, so the URL is the view (a link reproduces it,
 * the server renders it). Works without JS; the commit slider is the only enhancement (its handlers read
 * the commit list from the <select>, so nothing is serialized for them).
 */
import { $ } from "@builder.io/qwik";
import type { Commit } from "../api/types";
import { EVENT_STATUSES } from "../api/types";
import type { Filters } from "../lib/filters";
import { pageHref } from "../lib/filters";
import { formatCount, formatInstant, formatTimestamp } from "../lib/format";

const AS_OF_ID = "as-of";

/** datetime-local wants "YYYY-MM-DDTHH:MM" */
const localValue = (iso: string | null) => (iso ? iso.replace(/Z$/, "").slice(0, 16) : "");

function commitLabel(c: Commit): string {
  const when = c.completedAt ? formatTimestamp(c.completedAt) : formatInstant(c.instant);
  return `${when} · ${c.operation ?? c.action} · +${formatCount(c.rowsInserted)} ~${formatCount(c.rowsUpdated)}`;
}

const onSlide = $((_: Event, el: HTMLInputElement) => {
  const select = document.getElementById(AS_OF_ID) as HTMLSelectElement | null;
  if (!select) return;
  select.selectedIndex = select.options.length - 1 - Number(el.value);
  const label = document.getElementById("as-of-label");
  if (label) label.textContent = select.options[select.selectedIndex]?.text ?? "";
});

const onSlideDone = $((_: Event, el: HTMLInputElement | HTMLSelectElement) => {
  el.form?.requestSubmit();
});

export function ViewForm({ filters, commits }: { filters: Filters; commits: Commit[] }) {
  // the select lists "now" then commits newest first; the slider runs oldest (0) -> now (commits.length)
  const selectedIndex = filters.asOf ? Math.max(0, commits.findIndex((c) => c.instant === filters.asOf)) + 1 : 0;
  const knownAsOf = !filters.asOf || commits.some((c) => c.instant === filters.asOf);
  return (
    <form class="view-form" method="get" action="/" id="view">
      <div class="row">
        <label>
          pipeline
          <input name="pipeline" {...{ list: "pipelines" }} value={filters.pipelines.join(",")} placeholder="any" size={14} />
        </label>
        <label>
          stage
          <input name="stage" value={filters.stages.join(",")} placeholder="any" size={10} />
        </label>
        <fieldset class="statuses">
          <legend>status</legend>
          {EVENT_STATUSES.map((s) => (
            <label class={`chip chip-${s.toLowerCase()}`}>
              <input type="checkbox" name="status" value={s} checked={filters.statuses.includes(s)} />
              {s}
            </label>
          ))}
        </fieldset>
        <label>
          from (UTC)
          <input type="datetime-local" name="from" value={localValue(filters.from)} />
        </label>
        <label>
          to (UTC)
          <input type="datetime-local" name="to" value={localValue(filters.to)} />
        </label>
        <label>
          error contains
          <input type="search" name="q" value={filters.q ?? ""} placeholder="text in the error" size={16} />
        </label>
        {filters.correlationId && (
          <label>
            batch
            <input name="correlationId" value={filters.correlationId} size={14} />
          </label>
        )}
        {filters.limit !== 5000 && <input type="hidden" name="limit" value={String(filters.limit)} />}
        <button type="submit">Apply</button>
        <a href="/" class="reset">clear</a>
      </div>
      <div class="row time-travel">
        <label for={AS_OF_ID}>time travel</label>
        <input
          type="range"
          class="slider"
          aria-label="commit"
          min="0"
          max={String(commits.length)}
          value={String(commits.length - selectedIndex)}
          disabled={commits.length === 0}
          onInput$={onSlide}
          onChange$={onSlideDone}
        />
        <select id={AS_OF_ID} name="as_of" data-testid="as-of" onChange$={onSlideDone}>
          <option value="">now · live</option>
          {!knownAsOf && (
            <option value={filters.asOf!} selected>
              {filters.asOf!}
            </option>
          )}
          {commits.map((c) => (
            <option value={c.instant} selected={c.instant === filters.asOf}>
              {commitLabel(c)}
            </option>
          ))}
        </select>
        <span id="as-of-label" class="muted" />
        {filters.asOf && (
          <a href={pageHref(filters, { asOf: null })} class="back-live">
            back to live
          </a>
        )}
      </div>
    </form>
  );
}
