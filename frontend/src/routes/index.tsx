import { component$, untrack } from "@builder.io/qwik";
import { routeLoader$, type DocumentHead, type RequestHandler } from "@builder.io/qwik-city";
import {
  dagsterUrl, fetchCommits, fetchDeadLetters, fetchEvents, fetchMaintenance, fetchOpenAlerts, fetchStats, publicBffUrl, serverBff,
  settle, type Outcome,
} from "../api/bff";
import type { AlertList, CommitList, DeadLetterList, EventsResponse, Maintenance, Stats } from "../api/types";
import { AlertStrip } from "../components/alert-strip";
import { ChartIsland, StaticCharts } from "../components/charts";
import { LiveTimeline } from "../components/live-timeline";
import { DeadLettersPanel, MaintenancePanel } from "../components/panels";
import { TimelineBody, TimelineHead } from "../components/timeline-rows";
import { ViewForm } from "../components/view-form";
import { ALERTS_SHOWN } from "../lib/alerts";
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

/** What the page shows below the timeline: fetched while the top of the page is rendered and streamed. */
interface Panels {
  stats: Outcome<Stats>;
  maintenance: Outcome<Maintenance>;
  deadLetters: Outcome<DeadLetterList>;
}

interface Dashboard {
  bffUrl: string;
  publicBffUrl: string;
  dagsterUrl: string;
  filters: Filters;
  filterQuery: string;
  events: Outcome<EventsResponse>;
  commits: Outcome<CommitList>;
  /** GET /api/alerts?status=open, for the open-alerts strip. */
  alerts: Outcome<AlertList>;
  /** Not awaited by the loader: the page renders a Promise child, which Qwik's SSR awaits after flushing
   * everything above it (header, form, timeline), so the first screen does not wait for these calls. */
  panels: Promise<Panels>;
  statsQuery: string;
  chart: { from: string; to: string };
  renderedAt: number;
  /** `?live=poll`: follow by incremental polling (the fallback when the stream fails), e.g. behind a proxy that buffers SSE. */
  pollOnly: boolean;
}

/** Server side, per request: every BFF call of the page at once; one failing call fails only its panel.
 * The response starts once the timeline's calls (events, commits) are answered. */
export const useDashboard = routeLoader$<Dashboard>(async ({ env, url, headers }) => {
  const filters = parseFilters(url.searchParams);
  const bff = serverBff(env);
  const bffUrl = bff.url;
  const filterParams = bffFilterParams(filters);
  const eventsQuery = new URLSearchParams(filterParams);
  eventsQuery.set("limit", String(Math.min(FIRST_ROWS, filters.limit)));
  if (filters.asOf) eventsQuery.set("as_of", filters.asOf);
  const anchor = filters.asOf ? (instantMs(filters.asOf) || Date.parse(filters.asOf) || Date.now()) : Date.now();
  const chart = chartRange(filters.from, filters.to, anchor);
  const statsQuery = new URLSearchParams({ bucket: chart.bucket, from: chart.from, to: chart.to });
  for (const p of filters.pipelines) statsQuery.append("pipeline", p);
  const started = performance.now();
  const panels = Promise.all([
    settle(fetchStats(bff, statsQuery)),
    settle(fetchMaintenance(bff)),
    settle(fetchDeadLetters(bff, DEAD_LETTERS_SHOWN)),
  ]).then(([stats, maintenance, deadLetters]) => ({ stats, maintenance, deadLetters }));
  const [events, commits, alerts] = await Promise.all([
    settle(fetchEvents(bff, eventsQuery)),
    settle(fetchCommits(bff, COMMITS_FOR_SLIDER)),
    settle(fetchOpenAlerts(bff, ALERTS_SHOWN)),
  ]);
  // the BFF's share of the time to the first byte, for the browser's devtools and bench/dashboard
  headers.set("Server-Timing", `bff;dur=${(performance.now() - started).toFixed(1)};desc="BFF: events, commits, alerts"`);
  if (!events.ok && events.status === 0) console.warn(`[dashboard] BFF unreachable at ${bffUrl}: ${events.error}`);
  return {
    bffUrl, publicBffUrl: publicBffUrl(env), dagsterUrl: dagsterUrl(env), filters,
    filterQuery: filterParams.toString(), events, commits, alerts, panels, statsQuery: statsQuery.toString(), chart,
    renderedAt: Date.now(), pollOnly: url.searchParams.get("live") === "poll",
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
  return (
    <main>
      <header class="page-header">
        <h1>Pipeline events</h1>
        <nav class="top-links">
          <a href="#charts">charts</a>
          <a href="#dead-letters">dead letters</a>
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
      <AlertStrip
        publicBffUrl={d.publicBffUrl}
        initial={d.alerts.ok ? d.alerts.value : null}
        error={d.alerts.ok || !d.events.ok ? null : d.alerts.error}
      />
      {f.ignored.length > 0 && <p class="warn">Ignored: {f.ignored.join(", ")} (status is one of STARTED, RUNNING, COMPLETED, FAILED, RETRYING).</p>}
      <ViewForm filters={f} commits={commits} />
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
      {d.panels.then((p) => (
        <>
          <section id="charts" class="charts-section" aria-label="Charts">
            <h2>
              Throughput and failures per pipeline <span class="muted">(by last update, UTC)</span>
            </h2>
            {p.stats.ok ? (
              <ChartIsland publicBffUrl={d.publicBffUrl} statsQuery={d.statsQuery} from={d.chart.from} to={d.chart.to}>
                <StaticCharts stats={p.stats.value} from={d.chart.from} to={d.chart.to} />
              </ChartIsland>
            ) : (
              <p class="warn">Stats unavailable: {p.stats.error}</p>
            )}
            <PipelineOptions stats={p.stats} />
          </section>
          <div class="ops">
            <DeadLettersPanel outcome={p.deadLetters} />
            <MaintenancePanel outcome={p.maintenance} dagsterUrl={d.dagsterUrl} />
          </div>
        </>
      ))}
    </main>
  );
});

/** The filter form's pipeline suggestions (`<input list="pipelines">`): the pipelines the charts saw. */
function PipelineOptions({ stats }: { stats: Outcome<Stats> }) {
  const names = stats.ok ? [...new Set(stats.value.buckets.map((b) => b.pipelineName))].sort() : [];
  return (
    <datalist id="pipelines">
      {names.map((p) => (
        <option value={p} />
      ))}
    </datalist>
  );
}

export const head: DocumentHead = {
  title: "Pipeline events · obs-platform",
};
