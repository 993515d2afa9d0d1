/**
 * A batch's journey: its stage runs in order (/api/correlations/{id}), each with status, duration and counts,
 * and between consecutive stages what the next one received versus what the previous one processed, so
 * the stage where rows were lost stands out. Server-rendered, no JS.
 */
import { component$, untrack } from "@builder.io/qwik";
import { routeLoader$, type DocumentHead, type RequestHandler } from "@builder.io/qwik-city";
import { fetchJourney, serverBff, settle, type Outcome } from "../../../api/bff";
import type { Journey, JourneyStep } from "../../../api/types";
import { formatCount, formatTimestamp, statusClass } from "../../../lib/format";
import { atFailureHref } from "../../../lib/row-model";

export const onGet: RequestHandler = ({ cacheControl }) => {
  cacheControl({ noStore: true });
};

export const useJourney = routeLoader$<{ id: string; journey: Outcome<Journey> }>(async ({ env, params, status }) => {
  const journey = await settle(fetchJourney(serverBff(env), params.correlationId));
  if (!journey.ok) status(journey.status === 404 ? 404 : journey.status === 422 ? 422 : 502);
  return { id: params.correlationId, journey };
});

function stepText(s: JourneyStep): string {
  if (s.kind === "unknown" || s.delta === null) return "counts unknown";
  if (s.kind === "equal") return `all ${formatCount(s.nextCount)} rows handed over`;
  if (s.kind === "loss") return `${formatCount(-s.delta)} rows lost (${formatCount(s.previousProcessed)} → ${formatCount(s.nextCount)})`;
  return `${formatCount(s.delta)} rows gained (${formatCount(s.previousProcessed)} → ${formatCount(s.nextCount)})`;
}

export default component$(() => {
  const loader = useJourney();
  const { id, journey } = untrack(() => loader.value);
  if (!journey.ok) {
    return (
      <main>
        <p><a href="/">← timeline</a></p>
        <h1>Batch {id}</h1>
        <p class="bff-error" role="alert">{journey.error}</p>
      </main>
    );
  }
  const j = journey.value;
  const lossAt = new Set(j.steps.filter((s) => s.kind === "loss").map((s) => s.toEventId));
  return (
    <main class="journey">
      <p><a href="/">← timeline</a> · <a href={`/?correlationId=${encodeURIComponent(j.correlationId)}`}>this batch in the timeline</a></p>
      <h1>
        Batch <code>{j.correlationId}</code> <span class={statusClass(j.status)} data-testid="journey-status">{j.status}</span>
      </h1>
      <p class="muted">
        {j.pipelines.join(", ")} · {j.stages.length} stages · {formatTimestamp(j.startedAt)} → {formatTimestamp(j.lastUpdatedAt)} UTC
      </p>
      <ol class="stages" data-testid="journey-stages">
        {j.stages.map((s, i) => {
          const step = i > 0 ? j.steps.find((x) => x.toEventId === s.eventId) : undefined;
          return (
            <>
              {step && (
                <li class={`step step-${step.kind}`} data-kind={step.kind} aria-label="hand-over">
                  ↓ {stepText(step)}
                </li>
              )}
              <li class={`stage${lossAt.has(s.eventId) ? " lost-before" : ""}`} data-stage={s.stageName} data-status={s.status} data-event-id={s.eventId}>
                <div class="stage-head">
                  <b>{s.stageName}</b> <span class="muted">{s.pipelineName}</span> <span class={statusClass(s.status)}>{s.status}</span>
                  {s.status === "FAILED" && (
                    <a class="at-failure" href={atFailureHref(s.eventId)}>state at failure</a>
                  )}
                </div>
                <div class="stage-counts">
                  source <b>{formatCount(s.sourceRecordCount)}</b> → processed <b>{formatCount(s.processedRecordCount)}</b>
                  {s.durationSeconds !== null && <span class="muted"> · {s.durationSeconds.toFixed(1)} s</span>}
                  <span class="muted"> · started {formatTimestamp(s.startedAt)}</span>
                </div>
                {s.errorMessage && <div class="c-error">{s.errorMessage}</div>}
              </li>
            </>
          );
        })}
      </ol>
    </main>
  );
});

export const head: DocumentHead = ({ params }) => ({ title: `Batch ${params.correlationId} · obs-platform` });
