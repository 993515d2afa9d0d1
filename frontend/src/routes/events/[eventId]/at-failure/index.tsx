/**
 * An event's state at failure (/api/events/{id}/at-failure): the whole pipeline as of the commit that
 * recorded the failure, and what changed since the pipeline was last healthy. Server-rendered, no JS.
 */
import { component$, untrack } from "@builder.io/qwik";
import { routeLoader$, type DocumentHead, type RequestHandler } from "@builder.io/qwik-city";
import { fetchAtFailure, serverBff, settle, type Outcome } from "../../../../api/bff";
import type { EventAtFailure, PipelineEvent } from "../../../../api/types";
import { formatCount, formatInstant, formatTimestamp, statusClass } from "../../../../lib/format";
import { journeyHref } from "../../../../lib/row-model";

const ROWS = 200;

export const onGet: RequestHandler = ({ cacheControl }) => {
  cacheControl({ noStore: true });
};

export const useAtFailure = routeLoader$<{ id: string; at: Outcome<EventAtFailure> }>(async ({ env, params, status }) => {
  const at = await settle(fetchAtFailure(serverBff(env), params.eventId, ROWS));
  if (!at.ok) status(at.status === 404 || at.status === 409 || at.status === 422 ? at.status : 502);
  return { id: params.eventId, at };
});

const badge = (e: PipelineEvent | null) => (e ? <span class={statusClass(e.status)}>{e.status}</span> : <span class="muted">—</span>);
const counts = (e: PipelineEvent | null) => (e ? `${formatCount(e.sourceRecordCount)} → ${formatCount(e.processedRecordCount)}` : "");

export default component$(() => {
  const loader = useAtFailure();
  const { id, at } = untrack(() => loader.value);
  if (!at.ok) {
    return (
      <main>
        <p><a href="/">← timeline</a></p>
        <h1>State at failure of <code>{id}</code></h1>
        <p class="bff-error" role="alert">{at.error}</p>
      </main>
    );
  }
  const a = at.value;
  const e = a.event;
  return (
    <main class="at-failure-page">
      <p>
        <a href="/">← timeline</a> · <a href={journeyHref(e.correlationId)}>journey of batch {e.correlationId}</a> ·{" "}
        <a href={`/?pipeline=${encodeURIComponent(a.pipelineName)}&as_of=${a.failureCommit}`}>timeline of {a.pipelineName} as of the failure</a>
      </p>
      <h1>
        {a.pipelineName} / {e.stageName} failed <span class={statusClass(e.status)}>{e.status}</span>
      </h1>
      <dl class="kv">
        <dt>event</dt>
        <dd><code>{e.eventId}</code></dd>
        <dt>error</dt>
        <dd class="c-error" data-testid="failure-error">{e.errorMessage ?? "—"}</dd>
        <dt>failure commit</dt>
        <dd data-testid="failure-commit"><code>{a.failureCommit}</code> ({formatInstant(a.failureCommit)} UTC)</dd>
        <dt>last healthy commit</dt>
        <dd data-testid="healthy-commit">
          {a.healthyCommit ? <><code>{a.healthyCommit}</code> ({formatInstant(a.healthyCommit)} UTC)</> : "none retained"}
        </dd>
        <dt>FAILED in the pipeline then</dt>
        <dd>{formatCount(a.failedInPipeline)}</dd>
      </dl>
      {a.note && <p class="muted">{a.note}</p>}
      <h2>What changed since it was healthy <span class="muted">({formatCount(a.changesTotal)} rows)</span></h2>
      <table class="mini" data-testid="changes">
        <thead>
          <tr><th>event</th><th>stage</th><th>change</th><th>before</th><th>after</th><th>counts before → after</th><th>error after</th></tr>
        </thead>
        <tbody>
          {a.changes.map((c) => (
            <tr data-event-id={c.eventId} data-change={c.change}>
              <td class="mono">{c.eventId}</td>
              <td>{c.after.stageName}</td>
              <td>{c.change}</td>
              <td>{badge(c.before)}</td>
              <td>{badge(c.after)}</td>
              <td class="mono">{counts(c.before) || "—"} ⇒ {counts(c.after)}</td>
              <td class="c-error">{c.after.errorMessage ?? ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>The pipeline at the failure commit <span class="muted">({formatCount(a.pipelineState.total)} rows)</span></h2>
      <table class="mini" data-testid="pipeline-state">
        <thead>
          <tr><th>updated (UTC)</th><th>stage</th><th>status</th><th>source → processed</th><th>batch</th><th>error</th></tr>
        </thead>
        <tbody>
          {a.pipelineState.events.map((r) => (
            <tr data-event-id={r.eventId} data-status={r.status}>
              <td class="mono">{formatTimestamp(r.lastUpdatedAt)}</td>
              <td>{r.stageName}</td>
              <td>{badge(r)}</td>
              <td class="mono">{counts(r)}</td>
              <td class="mono"><a href={journeyHref(r.correlationId)}>{r.correlationId}</a></td>
              <td class="c-error">{r.errorMessage ?? ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </main>
  );
});

export const head: DocumentHead = ({ params }) => ({ title: `State at failure of ${params.eventId} · obs-platform` });
