#!/usr/bin/env python3
"""bench/detect: how soon a published event is seen through the live path, on the stream and on the dashboard.

    .venv/bin/python bench/detect.py [--rates 20,1000] [--seconds 30,15] [--no-ingestion [--no-table]] [--live-off]
                                     [--alerts-off]

``--live-off`` runs the BFF with OBS_BFF_LIVE_PATH=false and no browser: the BFF's CPU without the live path
(its cost is the difference) and publish -> commit on the stream (the path before).

One Pub/Sub emulator (the one ``make up`` uses), one BFF (``python -m bff``, one uvicorn worker, live path on,
as shipped), the built dashboard (node) and headless Chromium (Debian's, playwright-core) on free 127.0.0.1
ports; and the real streaming ingestion (``python -m obs_platform.ingestion``: Spark + Hudi, adaptive cadence)
on the same cores, as with ``make up``, which first commits a small seed so the BFF's committed-state lookup
runs against a real view. ``--no-ingestion``: the seed is written once by the writer and nothing commits during
the phases (the live path does not wait for the table); ``--no-table`` skips even that.

Per rate, events are published at that rate (paced) for the phase's seconds through the SDK's EventEmitter;
a share of them are probes: FAILED, the newest lastUpdatedAt (the others are RUNNING/COMPLETED states 5 s
older), so a probe lands on top of the open, unfiltered timeline as a user would see it.

* publish -> SSE pending: a client of /api/stream notes when each eventId first arrives in a ``pending`` event
  (every event, not only probes);
* publish -> SSE commit (with the ingestion): when the ``commit`` event holding it arrives: the path the
  dashboard had before the live path;
* publish -> dashboard: Chromium notes (MutationObserver on the timeline's rows) when each probe's row is
  first drawn (frontend/tests/live-path.mjs ``watch``).

* publish -> webhook received: the alerter inside the BFF (as shipped, ``OBS_BFF_ALERTS_ENGINE`` on) with an
  alerts settings file the bench writes (one ``json`` receiver: a local HTTP server here); each probe is a
  stage of its own (``probe-<n>``), so each opens an alert of its own (the ``failed`` rule would group repeats
  of one stage into one alert); the receiver notes when each probe's ``open`` body arrives.

``--alerts-off`` runs the BFF with OBS_BFF_ALERTS_ENGINE=false (no webhooks): the BFF's CPU without the alerter
(its cost at a rate is the difference between two runs).

Both from the moment before ``emit`` to the wall clock of the receiver (one machine, one clock); p50/p95/max.
Beside them: the BFF's CPU (from /proc) while the phase publishes (plus 0.5 s), in cores and per event. Writes bench/reports/detect-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from obs_platform.bus.client import ensure_topic_and_subscription  # noqa: E402
from obs_platform.bus.emulator import start_emulator  # noqa: E402
from obs_platform.sdk import EventEmitter  # noqa: E402
from obs_platform.settings import Settings  # noqa: E402
from obs_platform_tests.conftest import free_port, wait_http  # noqa: E402
from obs_platform_tests.test_alerts_bff import wait_subscribed  # noqa: E402
from obs_platform_tests.test_live_path import live_subscriptions, wait_for_subscriptions  # noqa: E402

FRONTEND = REPO / "frontend"
SERVER = FRONTEND / "server" / "entry.node-server.js"
DRIVER = FRONTEND / "tests" / "live-path.mjs"
TICKS = os.sysconf("SC_CLK_TCK")
PROBES_PER_SECOND = 2.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summary(latencies: list[float], expected: int) -> dict:
    return {"n": len(latencies), "expected": expected, "p50_s": pct(latencies, 0.5), "p95_s": pct(latencies, 0.95),
            "max_s": max(latencies) if latencies else None,
            "mean_s": statistics.fmean(latencies) if latencies else None}


class PendingClock:
    """Reads /api/stream; notes the wall time each eventId first arrives in a ``pending`` event."""

    def __init__(self, url: str):
        self.first: dict[str, float] = {}
        self.committed: dict[str, float] = {}
        self.ready = threading.Event()
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=300))
        self._thread = threading.Thread(target=self._run, args=(url,), daemon=True)
        self._thread.start()

    def _run(self, url: str) -> None:
        kind = None
        try:
            with self._client.stream("GET", f"{url}/api/stream") as response:
                for line in response.iter_lines():
                    if line.startswith("event:"):
                        kind = line[6:].strip()
                        if kind == "ready":
                            self.ready.set()
                    elif line.startswith("data:") and kind in ("pending", "commit"):
                        now = time.time()
                        seen = self.first if kind == "pending" else self.committed
                        for row in json.loads(line[5:])["events"]:
                            seen.setdefault(row["eventId"], now)
        except Exception:  # closed at the end
            pass

    def close(self) -> None:
        self._client.close()
        self._thread.join(10)


class WebhookClock:
    """A local HTTP receiver for the alerter's ``json`` webhooks; notes when each alert's ``open`` arrives, by
    the eventId it names."""

    def __init__(self):
        clock = self
        self.opened: dict[str, float] = {}
        self.bodies = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now = time.time()
                self.send_response(204)
                self.end_headers()
                clock.bodies += 1
                try:
                    message = json.loads(body)
                except ValueError:
                    return
                if message.get("event") == "open" and message["alert"].get("eventId"):
                    clock.opened.setdefault(message["alert"]["eventId"], now)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def alerts_settings(home: Path, url: str) -> Path:
    """The alerts settings file the BFF's alerter reads (OBS_ALERTS_FILE): defaults, one json receiver."""
    path = home / "alerts.toml"
    path.write_text(f'[[receivers]]\nname = "bench"\nkind = "json"\nurl = "{url}"\ntimeout_seconds = 5\n')
    return path


def seed_table(settings: Settings) -> None:
    """A few committed rows through the real writer, so the BFF reads a real table."""
    from obs_platform.lakehouse.spark import build_spark_session
    from obs_platform_tests.conftest import drain_into_table

    emitter = EventEmitter.from_settings(settings)
    now = datetime.now(UTC)
    for n in range(200):
        emitter.emit(event(f"seed-{n}", "COMPLETED", now - timedelta(minutes=30, seconds=n)))
    emitter.flush()
    spark = build_spark_session(settings, "bench-detect")
    try:
        drain_into_table(spark, settings)
    finally:
        spark.stop()


def event(event_id: str, status: str, updated: datetime, error: str | None = None, stage: str = "validate") -> dict:
    # source = processed: healthy hand-overs, so the traffic itself opens no `rows` alerts
    return {"eventId": event_id, "correlationId": f"b-{event_id[-3:]}", "pipelineName": "orders",
            "stageName": stage, "status": status, "eventTimestamp": updated - timedelta(minutes=1),
            "lastUpdatedAt": updated, "sourceRecordCount": 100, "processedRecordCount": 100, "errorMessage": error}


def phase(rate: float, seconds: float, settings: Settings, bff: str, bff_pid: int, dash: str,
          ingestion: bool, live: bool = True, hooks: WebhookClock | None = None) -> dict:
    every = max(1, round(rate / PROBES_PER_SECOND))
    total = int(rate * seconds)
    probes = [n for n in range(total) if n % every == every - 1]
    tag = f"r{int(rate)}-{int(time.time())}"
    clock = PendingClock(bff)
    clock.ready.wait(30)
    driver = None if not live else subprocess.Popen(
        ["node", str(DRIVER), "watch", json.dumps({"url": f"{dash}/", "prefix": f"probe-{tag}-", "count": len(probes),
                                                   "timeoutMs": int((seconds + 60) * 1000)})],
        cwd=FRONTEND, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready = json.loads(driver.stdout.readline() or "{}") if driver else {"ready": True}
    if not ready.get("ready"):
        raise RuntimeError(f"browser driver: {driver.stderr.read()[-2000:]}")
    emitter = EventEmitter.from_settings(settings)
    published: dict[str, float] = {}
    cpu0, wall0 = cpu_seconds(bff_pid), time.monotonic()
    start = time.monotonic()
    for n in range(total):
        due = start + n / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        probe = n % every == every - 1
        event_id = f"probe-{tag}-{n}" if probe else f"ev-{tag}-{n}"
        now = datetime.now(UTC)
        published[event_id] = time.time()
        if probe:
            emitter.emit(event(event_id, "FAILED", now, "Disk full on /data", stage=f"probe-{tag}-{n}"))
        else:
            emitter.emit(event(event_id, "RUNNING" if n % 2 else "COMPLETED", now - timedelta(seconds=5)))
    emitter.flush()
    publish_seconds = time.monotonic() - start
    time.sleep(0.5)  # the last rows' way through the BFF
    cpu1, wall1 = cpu_seconds(bff_pid), time.monotonic()
    out, err = driver.communicate(timeout=seconds + 120) if driver else ('{"result": {"seen": {}}}', "")
    deadline = time.monotonic() + 30
    while live and len(clock.first) < total and time.monotonic() < deadline:
        time.sleep(0.2)
    deadline = time.monotonic() + 120
    while ingestion and len(clock.committed) < total and time.monotonic() < deadline:
        time.sleep(0.5)
    deadline = time.monotonic() + 60
    probe_ids = [f"probe-{tag}-{n}" for n in probes]
    while hooks is not None and sum(i in hooks.opened for i in probe_ids) < len(probe_ids) \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    clock.close()
    if driver and driver.returncode != 0:
        raise RuntimeError(f"browser driver failed: {err[-2000:]}")
    seen = json.loads(out.strip().splitlines()[-1])["result"]["seen"]
    sse = [clock.first[i] - published[i] for i in published if i in clock.first]
    screen = [seen[i] / 1000 - published[i] for i in seen if i in published]
    committed = [clock.committed[i] - published[i] for i in published if i in clock.committed]
    webhook = [hooks.opened[i] - published[i] for i in probe_ids if hooks is not None and i in hooks.opened]
    return {
        "rate_target": rate, "rate_achieved": round(total / publish_seconds, 1), "seconds": seconds, "events": total,
        "probes": len(probes), "sse_pending": summary(sse, total), "dashboard_pending": summary(screen, len(probes)),
        **({"sse_committed": summary(committed, total)} if ingestion else {}),
        **({"webhook_open": summary(webhook, len(probes))} if hooks is not None else {}),
        "bff_cpu_cores": round((cpu1 - cpu0) / (wall1 - wall0), 3),
        "bff_cpu_ms_per_event": round(1000 * (cpu1 - cpu0) / total, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="20,1000")
    parser.add_argument("--seconds", default="30,15", help="phase length per rate")
    parser.add_argument("--live-off", action="store_true", help="the BFF without its live path (the path before)")
    parser.add_argument("--alerts-off", action="store_true", help="the BFF without its alerter (no webhooks)")
    parser.add_argument("--no-ingestion", action="store_true", help="no streaming ingestion beside the phases")
    parser.add_argument("--no-table", action="store_true", help="with --no-ingestion: no table at all (no Spark)")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    lengths = [float(s) for s in args.seconds.split(",")]
    lengths += [lengths[-1]] * (len(rates) - len(lengths))

    home = Path(tempfile.mkdtemp(prefix="bench-detect-"))
    base = Settings(home=home, pubsub_port=free_port())
    emulator = start_emulator(base, log_path=home / "pubsub.log")
    os.environ["PUBSUB_EMULATOR_HOST"] = emulator.address
    settings = Settings(home=home, pubsub_port=emulator.port, topic="detect-events", subscription="detect-events-hudi",
                        ack_deadline_seconds=10)
    procs: list[subprocess.Popen] = []
    hooks = None if args.alerts_off else WebhookClock()
    try:
        ensure_topic_and_subscription(settings)
        ingestion = not args.no_ingestion
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("OBS_")}, "OBS_HOME": str(home),
               "OBS_TOPIC": settings.topic, "OBS_SUBSCRIPTION": settings.subscription, "OBS_BIND_HOST": "127.0.0.1"}
        if ingestion:
            procs.append(subprocess.Popen([sys.executable, "-m", "obs_platform.ingestion"], cwd=REPO, env=env,
                                          stdout=open(home / "ingestion.log", "wb"), stderr=subprocess.STDOUT))  # noqa: SIM115
            emitter = EventEmitter.from_settings(settings)
            for n in range(200):
                emitter.emit(event(f"seed-{n}", "COMPLETED", datetime.now(UTC) - timedelta(minutes=30, seconds=n)))
            emitter.flush()
        elif not args.no_table:
            seed_table(settings)
        dash_port, bff_port = free_port(), free_port()
        dash, bff = f"http://127.0.0.1:{dash_port}", f"http://127.0.0.1:{bff_port}"
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("OBS_BFF_")}
        log = open(home / "bff.log", "wb")  # noqa: SIM115
        bff_proc = subprocess.Popen(
            [sys.executable, "-m", "bff"], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
            env={**inherited, "OBS_HOME": str(home), "OBS_BFF_PORT": str(bff_port), "OBS_BIND_HOST": "127.0.0.1",
                 "OBS_TOPIC": settings.topic, "OBS_SUBSCRIPTION": settings.subscription,
                 "OBS_BFF_CORS_ORIGINS": dash, "OBS_BFF_LIVE_PATH": "false" if args.live_off else "true",
                 "OBS_BFF_ALERTS_ENGINE": "false" if args.alerts_off else "true",
                 **({"OBS_ALERTS_FILE": str(alerts_settings(home, hooks.url))} if hooks else {})})
        procs.append(bff_proc)
        wait_http(f"{bff}/api/health", 60)
        deadline = time.monotonic() + 300
        while ingestion and httpx.get(f"{bff}/api/health").json()["latestCommit"] is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the ingestion made no commit in 300 s; see {home / 'ingestion.log'}")
            time.sleep(1)
        procs.append(subprocess.Popen(
            ["node", str(SERVER)], cwd=FRONTEND, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            env={**os.environ, "OBS_BFF_URL": bff, "OBS_DASHBOARD_PORT": str(dash_port),
                 "OBS_DASHBOARD_HOST": "127.0.0.1"}))
        wait_http(f"{dash}/", 60)
        wait_for_subscriptions(settings, 0 if args.live_off else 1)
        if hooks is not None:
            wait_subscribed(settings)  # the alerter's <topic>-alerts: what is published before it, it never sees
        idle0, t0 = cpu_seconds(bff_proc.pid), time.monotonic()
        time.sleep(5)
        idle = (cpu_seconds(bff_proc.pid) - idle0) / (time.monotonic() - t0)
        results = []
        for rate, seconds in zip(rates, lengths, strict=True):
            result = phase(rate, seconds, settings, bff, bff_proc.pid, dash, ingestion, not args.live_off, hooks)
            print(json.dumps(result), flush=True)
            results.append(result)
        write_report(args, emulator.kind, ingestion, idle, results)
        if args.live_off and live_subscriptions_exist(settings):
            raise RuntimeError("a live subscription exists although the live path is off")
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in reversed(procs):
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        emulator.stop()
        if hooks is not None:
            hooks.close()


def live_subscriptions_exist(settings: Settings) -> bool:
    return bool(live_subscriptions(settings))


def write_report(args, emulator_kind: str, ingestion: bool, idle: float, results: list[dict]) -> None:
    report = {
        "bench": "detect", "at": datetime.now(UTC).isoformat(), "machine": {"cpus": os.cpu_count(),
                                                                            "python": platform.python_version()},
        "emulator": emulator_kind, "live_path": not args.live_off, "ingestion_running": ingestion, "table": ingestion or not args.no_table,
        "alerts_engine": not args.alerts_off, "bff_idle_cpu_cores": round(idle, 3),
        "probes_per_second": PROBES_PER_SECOND, "batch_ms": 50, "phases": results,
        "note": "publish = just before EventEmitter.emit; SSE = first pending event holding the eventId (every "
                "event); dashboard = first time the probe's row is drawn in Chromium (FAILED probes, newest on top); "
                "webhook = the alerter's json webhook announcing the probe's alert (open) received by a local HTTP "
                "server (each probe a stage of its own, so an alert of its own; default rules, default settings).",
    }
    out = REPO / "bench" / "reports" / f"detect-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")
    print(f"{'rate':>8} {'achieved':>9} {'SSE p50':>8} {'SSE p95':>8} {'dash p50':>9} {'dash p95':>9} "
          f"{'hook p50':>9} {'hook p95':>9} {'BFF cores':>10}")
    def f(v, width):
        return f"{v:>{width}.3f}" if v is not None else f"{'-':>{width}}"

    for r in results:
        sse, dash, hook = r["sse_pending"], r["dashboard_pending"], r.get("webhook_open", {})
        print(f"{r['rate_target']:>8.0f} {r['rate_achieved']:>9.1f} {f(sse['p50_s'], 8)} {f(sse['p95_s'], 8)} "
              f"{f(dash['p50_s'], 9)} {f(dash['p95_s'], 9)} {f(hook.get('p50_s'), 9)} {f(hook.get('p95_s'), 9)} "
              f"{r['bff_cpu_cores']:>10.3f}")


if __name__ == "__main__":
    main()
