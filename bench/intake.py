#!/usr/bin/env python3
"""bench/intake: accepted OpenLineage events per second through ``POST /api/v1/lineage``, and its p95 latency.

    .venv/bin/python bench/intake.py [--events 4000] [--batch-events 40000]

A Pub/Sub emulator (the one ``make up`` uses) and one BFF process (``python -m bff``: one uvicorn worker, as
shipped) on free 127.0.0.1 ports; the events are Airflow-shaped RunEvents (a parent and root run facet, a
nominal time, an input and an output dataset with statistics; ~1.4 KB of JSON each) serialised by
openlineage-python. An event counts as accepted when its request got the 2xx, i.e. after Pub/Sub confirmed
its publish. Cases:

* single: one event per request (what openlineage-python's HttpTransport sends), 1 and 8 concurrent clients
  (httpx, keep-alive), and through openlineage-python's own HttpTransport (requests, one client);
* batch: JSON arrays of 100 and 1,000 events, 4 concurrent clients; gzip NDJSON of 1,000 events.

Latency is the client's wall time of one request (p50/p95/max). Beside each case: the CPU seconds the BFF and
the emulator used per 1,000 events (from /proc), which is what bounds the rate on this 2-core machine.
Writes bench/reports/intake-<timestamp>.json and prints a table.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from obs_platform.bus.client import ensure_topic_and_subscription  # noqa: E402
from obs_platform.bus.emulator import start_emulator  # noqa: E402
from obs_platform.settings import Settings  # noqa: E402
from obs_platform_tests.conftest import free_port, wait_http  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its children that were waited for (the emulator runs under a shell)."""
    total = 0.0
    for p in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def _children(pid: int) -> list[int]:
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return []
    out = [int(k) for k in kids]
    for k in list(out):
        out += _children(k)
    return out


def make_events(n: int, seed: str, as_objects: bool = False) -> list:
    from openlineage.client.event_v2 import RunState
    from openlineage.client.facet_v2 import nominal_time_run
    from openlineage.client.serde import Serde

    from obs_platform_tests.lineage_events import event, parent, read, uuid7, write

    t0 = datetime.now(UTC) - timedelta(hours=1)
    dag_run = uuid7(t0)
    out = []
    for i in range(n):
        at = t0 + timedelta(milliseconds=i)
        facets = {"parent": parent(dag_run, "airflow-bench", f"dag_{seed}", root=(dag_run, "airflow-bench", f"dag_{seed}")),
                  "nominalTime": nominal_time_run.NominalTimeRunFacet(nominalStartTime=t0.isoformat())}
        state = RunState.START if i % 2 == 0 else RunState.COMPLETE
        ev = event(state, at, uuid7(at), "airflow-bench", f"dag_{seed}.task_{i % 40}", facets=facets,
                   inputs=[read("postgres://db:5432", "shop.public.orders", 1000)],
                   outputs=[write("s3://lake", f"clean/orders_{i % 40}", 990)])
        out.append(ev if as_objects else Serde.to_json(ev))
    return out


def run_case(name: str, url: str, bodies: list[tuple[bytes, dict, int]], clients: int, pids: dict) -> dict:
    """POST every body (content, headers, events in it) with ``clients`` threads; all must answer 200."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    local = threading.local()

    def send(item):
        content, headers, _ = item
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=url, timeout=60)
        start = time.perf_counter()
        response = client.post("/api/v1/lineage", content=content, headers=headers)
        elapsed = time.perf_counter() - start
        with lock:
            latencies.append(elapsed)
            if response.status_code != 200:
                failures.append(f"{response.status_code} {response.text[:200]}")

    cpu_before = {k: cpu_seconds(p) for k, p in pids.items()}
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(send, bodies))
    wall = time.perf_counter() - start
    cpu = {k: cpu_seconds(p) - cpu_before[k] for k, p in pids.items()}
    events = sum(b[2] for b in bodies)
    if failures:
        raise SystemExit(f"{name}: {len(failures)} requests failed, e.g. {failures[0]}")
    return _summary(name, events, len(bodies), clients, wall, latencies, cpu)


def _summary(name, events, requests, clients, wall, latencies, cpu) -> dict:
    ordered = sorted(latencies)
    return {
        "case": name, "events": events, "requests": requests, "clients": clients, "seconds": round(wall, 3),
        "events_per_second": round(events / wall, 1), "requests_per_second": round(requests / wall, 1),
        "latency_ms": {"p50": round(statistics.median(ordered) * 1000, 2),
                       "p95": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 2),
                       "max": round(ordered[-1] * 1000, 2)},
        "cpu_seconds_per_1000_events": {k: round(v / events * 1000, 3) for k, v in cpu.items()},
        "cpu_share_of_one_core": {k: round(v / wall, 2) for k, v in cpu.items()},
    }


def transport_case(url: str, events: list, pids: dict) -> dict:
    """openlineage-python's own HttpTransport.emit (Serde, requests + urllib3 retry), one event per request,
    one client: what an Airflow worker or a Spark driver does per event."""
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    transport = HttpTransport(HttpConfig.from_dict({"url": url}))
    latencies = []
    cpu_before = {k: cpu_seconds(p) for k, p in pids.items()}
    start = time.perf_counter()
    for body in events:
        t = time.perf_counter()
        transport.emit(body)  # raises on a non-2xx
        latencies.append(time.perf_counter() - t)
    wall = time.perf_counter() - start
    cpu = {k: cpu_seconds(p) - cpu_before[k] for k, p in pids.items()}
    return _summary("single, openlineage-python HttpTransport.emit", len(events), len(events), 1, wall,
                    latencies, cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000, help="events for each single-event case")
    parser.add_argument("--batch-events", type=int, default=40_000, help="events for each batch case")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="bench-intake-"))
    settings = Settings(home=home, pubsub_port=free_port(), topic="intake-bench", subscription="intake-bench-hudi")
    emulator = start_emulator(settings, log_path=home / "pubsub.log")
    os.environ["PUBSUB_EMULATOR_HOST"] = emulator.address
    ensure_topic_and_subscription(settings)
    port = free_port()
    env = {**os.environ, "OBS_HOME": str(home), "OBS_BFF_PORT": str(port), "OBS_BIND_HOST": "127.0.0.1",
           "OBS_TOPIC": settings.topic, "OBS_SUBSCRIPTION": settings.subscription,
           "OBS_PUBSUB_PORT": str(settings.pubsub_port)}
    bff = subprocess.Popen([sys.executable, "-m", "bff"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    cases = []
    try:
        wait_http(f"{url}/api/health", 60)
        pids = {"bff": bff.pid, "emulator": emulator.process.pid}
        json_headers = {"Content-Type": "application/json"}
        warm = make_events(200, "warm")
        run_case("warm-up", url, [(e.encode(), json_headers, 1) for e in warm], 4, pids)
        single = make_events(args.events, "single")
        event_bytes = statistics.mean(len(e) for e in single)
        for clients in (1, 8):
            cases.append(run_case(f"single, {clients} client(s)", url,
                                  [(e.encode(), json_headers, 1) for e in single], clients, pids))
        cases.append(transport_case(url, make_events(min(args.events, 2000), "transport", as_objects=True), pids))
        batch = make_events(args.batch_events, "batch")
        for size in (100, 1000):
            bodies = [(("[" + ",".join(batch[i:i + size]) + "]").encode(), json_headers, len(batch[i:i + size]))
                      for i in range(0, len(batch), size)]
            cases.append(run_case(f"batch of {size} (JSON array), 4 clients", url, bodies, 4, pids))
        nd_headers = {"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"}
        bodies = [(gzip.compress("\n".join(batch[i:i + 1000]).encode(), 3), nd_headers, len(batch[i:i + 1000]))
                  for i in range(0, len(batch), 1000)]
        cases.append(run_case("batch of 1000 (gzip NDJSON), 4 clients", url, bodies, 4, pids))
    finally:
        bff.terminate()
        bff.wait(10)
        emulator.stop()

    report = {
        "bench": "intake", "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "loadavg_at_end": os.getloadavg()},
        "emulator": getattr(emulator, "kind", "local"),
        "event_json_bytes": round(event_bytes), "cases": cases,
        "bound": "One BFF process (one uvicorn worker, one Python thread of CPU for parsing, schema validation, "
                 "Avro encoding and the Pub/Sub client): events/s is bounded by its CPU seconds per event "
                 "(cpu_share_of_one_core near 1.0); single-event requests add the per-request HTTP cost and the "
                 "publish round trip (the publisher batches for up to 5 ms). The client and the emulator share "
                 "the same 2 cores.",
    }
    out = REPO / "bench" / "reports" / f"intake-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'case':<52} {'events/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'BFF cpu':>8}")
    for c in cases:
        print(f"{c['case']:<52} {c['events_per_second']:>9,.0f} {c['latency_ms']['p50']:>8} "
              f"{c['latency_ms']['p95']:>8} {c['cpu_share_of_one_core']['bff']:>8}")
    print(f"(~{event_bytes:,.0f} bytes of JSON per event) wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
