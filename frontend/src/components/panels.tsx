/**
 * Operations panels, server-rendered: the table's maintenance (what time travel can reach, the last
 * clustering/compaction/clean/rollback, pending actions) and the pending dead letters, with a link to
 * Dagster, where the table services run. No JS.
 */
import type { Outcome } from "../api/bff";
import type { DeadLetterList, Maintenance, TimelineAction } from "../api/types";
import { formatCount, formatInstant, formatTimestamp } from "../lib/format";

function action(a: TimelineAction | null) {
  if (!a) return <span class="muted">never</span>;
  return (
    <span title={`${a.action} ${a.instant}`}>
      {a.completedAt ? formatTimestamp(a.completedAt) : formatInstant(a.instant)}
    </span>
  );
}

export function MaintenancePanel({ outcome, dagsterUrl }: { outcome: Outcome<Maintenance>; dagsterUrl: string }) {
  return (
    <section class="panel" id="maintenance" aria-label="Table maintenance">
      <h2>
        Table maintenance{" "}
        <a class="ext" href={dagsterUrl} target="_blank" rel="noopener" data-testid="dagster-link">
          open Dagster ↗
        </a>
      </h2>
      {!outcome.ok ? (
        <p class="warn">unavailable: {outcome.error}</p>
      ) : (
        <dl class="kv">
          <dt>commits</dt>
          <dd>
            {formatCount(outcome.value.commitCount)} · latest <code>{outcome.value.latestCommit ?? "—"}</code>
          </dd>
          <dt>time travel reaches</dt>
          <dd>
            {outcome.value.oldestRetainedCommit ? formatInstant(outcome.value.oldestRetainedCommit) : "—"}{" "}
            <span class="muted">(horizon {outcome.value.timeTravelHorizonHours} h
              {outcome.value.savepoints.length ? `, ${outcome.value.savepoints.length} savepoints` : ""})</span>
          </dd>
          <dt>last compaction / clustering</dt>
          <dd data-testid="last-compaction">
            {action(outcome.value.lastCompaction)} / {action(outcome.value.lastClustering)}
          </dd>
          <dt>last clean</dt>
          <dd data-testid="last-clean">{action(outcome.value.lastClean)}</dd>
          <dt>last rollback</dt>
          <dd>{action(outcome.value.lastRollback)}</dd>
          <dt>pending</dt>
          <dd>
            {outcome.value.pending.length
              ? outcome.value.pending.map((p) => `${p.action} ${p.instant}`).join(", ")
              : "none"}
          </dd>
        </dl>
      )}
    </section>
  );
}

export function DeadLettersPanel({ outcome }: { outcome: Outcome<DeadLetterList> }) {
  return (
    <section class="panel" id="dead-letters" aria-label="Dead letters">
      <h2>
        Dead letters{" "}
        {outcome.ok && (
          <span class={outcome.value.total ? "count warn" : "count"} data-testid="dead-letter-count">
            {formatCount(outcome.value.total)} pending
          </span>
        )}
      </h2>
      {!outcome.ok ? (
        <p class="warn">unavailable: {outcome.error}</p>
      ) : outcome.value.total === 0 ? (
        <p class="muted">None: every message decoded.</p>
      ) : (
        <>
          <p class="muted">
            by reason:{" "}
            {Object.entries(outcome.value.byReason).map(([reason, n]) => `${reason} ${formatCount(n)}`).join(" · ")}
          </p>
          <table class="mini">
            <thead>
              <tr>
                <th>received (UTC)</th>
                <th>reason</th>
                <th>detail</th>
                <th class="c-num">bytes</th>
              </tr>
            </thead>
            <tbody>
              {outcome.value.deadLetters.map((d) => (
                <tr data-message-id={d.messageId}>
                  <td class="mono">{formatTimestamp(d.receivedAt)}</td>
                  <td>{d.reason}</td>
                  <td class="clip" title={d.detail}>{d.detail}</td>
                  <td class="c-num">{formatCount(d.sizeBytes)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
