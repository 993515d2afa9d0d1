import { component$, untrack } from "@builder.io/qwik";
import { routeLoader$, type DocumentHead, type RequestHandler } from "@builder.io/qwik-city";
import {
  dagsterUrl, fetchCommits, fetchDeadLetters, fetchEvents, fetchMaintenance, fetchStats, publicBffUrl, serverBffUrl,
  settle, type Outcome,
} from "../api/bff";
import type { CommitList, DeadLetterList, EventsResponse, Maintenance, Stats } from "../api/types";
import { ChartIsland, StaticCharts } from "../components/charts";
import { LiveTimeline } from "../components/live-timeline";
import { DeadLettersPanel, MaintenancePanel } from "../components/panels";
import { TimelineBody, TimelineHead } from "../components/timeline-rows";
import { ViewForm } from "../components/view-form";
import { chartRange } from "../lib/chart-model";
import { showDetails } from "../lib/details";
import { bffFilterParams, type Filters, hasFilters, parseFilters } from "../lib/filters";
import { formatInstant, instantMs } from "../lib/format";
import { IDS } from "../lib/timeline";

/** Rows the server renders: a screenful; the rest of the window is laid out by the browser when scrolled to. */
export const FIRST_ROWS = 30;
const COMMITS_FOR_SLIDER = 200;
const DEAD_LETTERS_SHOWN = 5;

/** A live dashboard: never cache the rendered page. */
export const onGet: RequestHandler = ({ cacheControl }) => {
  cacheControl({ noStore: true });
};

interface Dashboard {
  bffUrl: string;
  publicBffUrl: string;
  dagsterUrl: string;
  filters: Filters;
  filterQuery: string;
  events: Outcome<EventsResponse>;
  commits: Outcome<CommitList>;
  stats: Outcome<Stats>;
  statsQuery: string;
  chart: { from: string; to: string };
  maintenance: Outcome<Maintenance>;
  deadLetters: Outcome<DeadLetterList>;
  renderedAt: number;
  /** `?live=poll`: follow by incremental polling (the fallback when the stream fails), e.g. behind a proxy that buffers SSE. */
  pollOnly: boolean;
}

/** Server side, per request: every BFF call of the page at once; one failing call fails only its panel. */
export const useDashboard = routeLoader$<Dashboard>(async ({ env, url, headers }) => {
  const filters = parseFilters(url.searchParams);
  const bffUrl = serverBffUrl(env);
  const filterParams = bffFilterParams(filters);
  const eventsQuery = new URLSearchParams(filterParams);
  eventsQuery.set("limit", String(Math.min(FIRST_ROWS, filters.limit)));
  if (filters.asOf) eventsQuery.set("as_of", filters.asOf);
  const anchor = filters.asOf ? (instantMs(filters.asOf) || Date.parse(filters.asOf) || Date.now()) : Date.now();
  const chart = chartRange(filters.from, filters.to, anchor);
  const statsQuery = new URLSearchParams({ bucket: chart.bucket, from: chart.from, to: chart.to });
  for (const p of filters.pipelines) statsQuery.append("pipeline", p);
  const started = performance.now();
  const [events, commits, stats, maintenance, deadLetters] = await Promise.all([
    settle(fetchEvents(bffUrl, eventsQuery)),
    settle(fetchCommits(bffUrl, COMMITS_FOR_SLIDER)),
    settle(fetchStats(bffUrl, statsQuery)),
    settle(fetchMaintenance(bffUrl)),
    settle(fetchDeadLetters(bffUrl, DEAD_LETTERS_SHOWN)),
  ]);
  // the BFF's share of this response's time, for the browser's devtools and bench/dashboard
  headers.set("Server-Timing", `bff;dur=${(performance.now() - started).toFixed(1)};desc="BFF calls"`);
  if (!events.ok && events.status === 0) console.warn(`[dashboard] BFF unreachable at ${bffUrl}: ${events.error}`);
  return {
    bffUrl, publicBffUrl: publicBffUrl(env), dagsterUrl: dagsterUrl(env), filters,
    filterQuery: filterParams.toString(), events, commits, stats, statsQuery: statsQuery.toString(), chart,
    maintenance, deadLetters, renderedAt: Date.now(), pollOnly: url.searchParams.get("live") === "poll",
  };
});

export default component$(() => {
  // Read without subscribing: everything here is rendered once on the server; the interactive parts get
  // primitives. Untracked, the loader's data is not referenced by any subscription and stays out of the
  // page's serialized state (QwikDev/qwik#5173): the events reach the browser once, as HTML.
  const loader = useDashboard();
  const d = untrack(() => loader.value);
  const f = d.filters;
  const events = d.events.ok ? d.events.value : null;
  const total = events ? Math.min(events.total, f.limit) : 0;
  const commits = d.commits.ok ? d.commits.value.commits : [];
  const pipelines = d.stats.ok ? [...new Set(d.stats.value.buckets.map((b) => b.pipelineName))].sort() : [];
  return (
    <main>
      <header class="page-header">
        <h1>Pipeline events</h1>
        <nav class="top-links">
          <a href="#charts">charts</a>
          <a href="#dead-letters">
            dead letters{d.deadLetters.ok && d.deadLetters.value.total ? ` (${d.deadLetters.value.total})` : ""}
          </a>
          <a href="#maintenance">maintenance</a>
          <a href={d.dagsterUrl} target="_blank" rel="noopener">Dagster ↗</a>
        </nav>
      </header>
      {!d.events.ok && (
        <p id="bff-error" class="bff-error" role="alert">
          {d.events.status === 0 ? (
            <>
              BFF unreachable at <code>{d.bffUrl}</code> ({d.events.error}). Showing no events; retrying from the
              browser at <code>{d.publicBffUrl}</code>.
            </>
          ) : (
            <>The BFF refused this view: {d.events.error}</>
          )}
        </p>
      )}
      {f.ignored.length > 0 && <p class="warn">Ignored: {f.ignored.join(", ")} (status is one of STARTED, RUNNING, COMPLETED, FAILED, RETRYING).</p>}
      <ViewForm filters={f} commits={commits} pipelines={pipelines} />
      {f.asOf && events && (
        <p class="time-travel-banner" data-testid="time-travel-banner">
          Time travel: the table as of commit <code>{events.asOf}</code> ({formatInstant(events.asOf)} UTC). Live
          updates are off.
        </p>
      )}
      <aside id={IDS.detail} class="detail" aria-live="polite">
        Click a row for its details{hasFilters(f) ? "" : "; a batch id for its journey; “at failure” for a failed stage"}.
      </aside>
      <LiveTimeline
        publicBffUrl={d.publicBffUrl}
        filterQuery={d.filterQuery}
        asOf={events?.asOf ?? null}
        latestCommit={events?.latestCommit ?? null}
        timeTravel={!!f.asOf}
        total={total}
        matching={events?.total ?? 0}
        cap={f.limit}
        renderedAt={d.renderedAt}
        pollOnly={d.pollOnly}
      >
        <div
          id={IDS.scroll}
          class="tl-scroll"
          role="table"
          aria-label="events, newest first"
          aria-rowcount={total}
          onClick$={(ev) => {
            showDetails(ev);
          }}
        >
          <TimelineHead />
          <TimelineBody
            events={events ? events.events : []}
            total={total}
            emptyText={events ? (hasFilters(f) ? "No events match these filters." : "No events yet.") : "No events (BFF unavailable)."}
          />
        </div>
      </LiveTimeline>
      <section id="charts" class="charts-section" aria-label="Charts">
        <h2>
          Throughput and failures per pipeline <span class="muted">(by last update, UTC)</span>
        </h2>
        {d.stats.ok ? (
          <ChartIsland publicBffUrl={d.publicBffUrl} statsQuery={d.statsQuery} from={d.chart.from} to={d.chart.to}>
            <StaticCharts stats={d.stats.value} from={d.chart.from} to={d.chart.to} />
          </ChartIsland>
        ) : (
          <p class="warn">Stats unavailable: {d.stats.error}</p>
        )}
      </section>
      <div class="ops">
        <DeadLettersPanel outcome={d.deadLetters} />
        <MaintenancePanel outcome={d.maintenance} dagsterUrl={d.dagsterUrl} />
      </div>
    </main>
  );
});

export const head: DocumentHead = {
  title: "Pipeline events · obs-platform",
};
