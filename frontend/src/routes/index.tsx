import { component$, untrack } from "@builder.io/qwik";
import { routeLoader$, type DocumentHead, type RequestHandler } from "@builder.io/qwik-city";
import { BffError, fetchEvents, publicBffUrl, serverBffUrl } from "../api/bff";
import type { PipelineEvent } from "../api/types";
import { EventsTable } from "../components/events-table";
import { LiveStatus } from "../components/live-status";

const DEFAULT_LIMIT = 200;
const MAX_LIMIT = 5000;

/** A live dashboard: never cache the rendered page. */
export const onGet: RequestHandler = ({ cacheControl }) => {
  cacheControl({ noStore: true });
};

type EventsPage = {
  bffUrl: string;
  publicBffUrl: string;
  limit: number;
} & (
  | { ok: true; events: PipelineEvent[]; latestCommit: string | null; fetchedAt: number }
  | { ok: false; error: string }
);

/** Server side, per request: the newest events from the BFF (`?limit=` 1..5000, default 200). */
export const useEventsPage = routeLoader$<EventsPage>(async ({ env, url }) => {
  const asked = Number.parseInt(url.searchParams.get("limit") ?? "", 10);
  const limit = Number.isFinite(asked) ? Math.min(Math.max(asked, 1), MAX_LIMIT) : DEFAULT_LIMIT;
  const common = {
    bffUrl: serverBffUrl(env),
    publicBffUrl: publicBffUrl(env),
    limit,
  };
  try {
    const { events, latestCommit } = await fetchEvents(common.bffUrl, limit);
    return { ...common, ok: true, events, latestCommit, fetchedAt: Date.now() };
  } catch (e) {
    const error = e instanceof BffError ? e.message : String(e);
    console.warn(`[dashboard] BFF unreachable at ${common.bffUrl}: ${error}`);
    return { ...common, ok: false, error };
  }
});

export default component$(() => {
  // Read without subscribing: the table is rendered once on the server and then kept current by
  // LiveStatus in the browser, so nothing here re-renders. Untracked, the loader's data is not
  // referenced by any subscription and Qwik leaves it out of the page's serialized state (the
  // loader state is weakly serialized), so the events go to the browser once, as HTML.
  const loader = useEventsPage();
  const page = untrack(() => loader.value);
  const events = page.ok ? page.events : [];
  return (
    <main>
      <header class="page-header">
        <h1>Pipeline events</h1>
        <LiveStatus
          publicBffUrl={page.publicBffUrl}
          since={page.ok ? page.latestCommit : null}
          count={events.length}
          limit={page.limit}
          fetchedAt={page.ok ? page.fetchedAt : 0}
        />
      </header>
      {!page.ok && (
        <p id="bff-error" class="bff-error" role="alert">
          BFF unreachable at <code>{page.bffUrl}</code> ({page.error}). Showing no events; retrying
          from the browser at <code>{page.publicBffUrl}</code>.
        </p>
      )}
      <EventsTable events={events} />
    </main>
  );
});

export const head: DocumentHead = {
  title: "Pipeline events · obs-platform",
};
