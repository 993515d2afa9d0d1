/**
 * The baseline: the dashboard's events table as a plain client-side React SPA. An empty HTML shell; the
 * bundle fetches the same BFF (`?bff=` or http://127.0.0.1:8080) with the same query as the dashboard's
 * window, then renders every row as an HTML table. A click on a row shows it in the details panel, the
 * same control bench/dashboard clicks on the Qwik page.
 */
import { memo, useCallback, useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import "./styles.css";

const params = new URLSearchParams(location.search);
const BFF = (params.get("bff") || "http://127.0.0.1:8080").replace(/\/+$/, "");
const LIMIT = params.get("limit") || "5000";

const fmtTime = (iso) => (iso ? new Date(iso).toISOString().replace("T", " ").replace("Z", "") : "");
const fmtCount = (n) => (typeof n === "number" ? n.toLocaleString("en-US") : "—");

const Row = memo(function Row({ e, selected, onSelect }) {
  return (
    <tr data-event-id={e.eventId} className={selected ? "selected" : undefined} onClick={() => onSelect(e.eventId)}>
      <td className="c-time"><time dateTime={e.lastUpdatedAt}>{fmtTime(e.lastUpdatedAt)}</time></td>
      <td>{e.pipelineName}</td>
      <td>{e.stageName}</td>
      <td data-status={e.status}><span className={`badge badge-${e.status.toLowerCase()}`}>{e.status}</span></td>
      <td className="c-num">{fmtCount(e.sourceRecordCount)}</td>
      <td className="c-num">{fmtCount(e.processedRecordCount)}</td>
      <td className="c-error" title={e.errorMessage || undefined}>{e.errorMessage || ""}</td>
      <td className="c-corr"><a href={`#journey/${e.correlationId}`}>{e.correlationId}</a></td>
      <td className="c-commit">{e.commitTime}</td>
    </tr>
  );
});

function Details({ event }) {
  if (!event) return <aside id="event-detail" className="detail">Click a row for its details.</aside>;
  return (
    <aside id="event-detail" className="detail" data-event-id={event.eventId}>
      <b>{event.pipelineName} / {event.stageName}</b> · {event.status} · {event.eventId}
      {event.errorMessage ? <div className="c-error">{event.errorMessage}</div> : null}
    </aside>
  );
}

function App() {
  const [page, setPage] = useState(null);
  const [error, setError] = useState(null);
  const [selected, setSelected] = useState(null);
  useEffect(() => {
    fetch(`${BFF}/api/events?limit=${LIMIT}`, { headers: { accept: "application/json" } })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`))))
      .then(setPage, (e) => setError(String(e)));
  }, []);
  const onSelect = useCallback((id) => setSelected(id), []);
  if (error) return <p className="error">BFF unreachable: {error}</p>;
  if (!page) return <p>Loading…</p>;
  const event = selected ? page.events.find((e) => e.eventId === selected) : null;
  return (
    <main>
      <header className="page-header">
        <h1>Pipeline events</h1>
        <span>{page.events.length} of {page.total} events · latest commit <code>{page.latestCommit}</code></span>
      </header>
      <Details event={event} />
      <table className="events">
        <thead>
          <tr>
            {["updated (UTC)", "pipeline", "stage", "status", "source", "processed", "error", "correlation id", "commit"].map(
              (h) => <th key={h}>{h}</th>)}
          </tr>
        </thead>
        <tbody>
          {page.events.map((e) => <Row key={e.eventId} e={e} selected={e.eventId === selected} onSelect={onSelect} />)}
        </tbody>
      </table>
    </main>
  );
}

createRoot(document.getElementById("root")).render(<App />);
