#!/usr/bin/env python3
"""bench/bff: build a 1,000,000-event Hudi table with the real writer, then time the BFF's endpoints over HTTP.

    .venv/bin/python bench/bff.py [--home DIR] [--events 1000000] [--commits 20] [--reps 60] [--backends embedded,thrift]

1. Build (skipped when ``DIR`` already holds the table): ``--commits`` upserts of ``events/commits`` new stage
   runs each, one day of ``eventTimestamp`` per commit (so one partition per commit), each also moving 10% of
   the previous commit's stage runs to a final state; then 3 small "live" commits (500 updates + 500 new
   runs each, the shape of a streaming micro-batch). Every commit goes through the real writer:
   ``obs_platform.ingestion.stream.lakehouse.writer.TableWriter.upsert`` with the Hudi options from ``TableSpec``
   (Spark local[2] + Hudi), fed decoded Arrow batches (``row_schema`` of the reader schema), no Pub/Sub.
2. Measure: a BFF subprocess (``python -m bff``, uvicorn) on the table with its cached view (the default),
   and a second one with ``OBS_BFF_VIEW_CACHE=false`` (every request reads the table with hudi-rs: the
   "full scan" the view avoids). Each endpoint runs ``--warmup`` times, then ``--reps`` times; p50/p95 of
   the wall time of the HTTP request (client side, keep-alive connection).

3. With ``--backends embedded,thrift``: the same endpoints (``cases``) through a BFF with ``OBS_BFF_BACKEND=thrift``
   against a Spark Thrift Server on free ports (PostgreSQL metastore + Hive sync of the table, under DIR),
   reported under ``thrift`` beside the embedded numbers.

Writes bench/reports/bff-<timestamp>.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("JAVA_HOME", "/usr/lib/jvm/java-17-openjdk-amd64")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

PIPELINES = ["orders", "clickstream", "billing", "inventory", "payments", "search", "ml-features"]
STAGES = ["extract", "validate", "transform", "load"]
DAY0 = datetime(2026, 10, 1, tzinfo=UTC)


# --- build ----------------------------------------------------------------------------------------------
def _rows(schema, events: list[dict]):
    """Event dicts as a batch in the table's row schema (shared with bench/dashboard_table.py)."""
    from bench.dashboard_table import arrow_rows

    return arrow_rows(schema, events)


def _stage_run(n: int, day: int, status: str, minute_offset: int = 0) -> dict:
    started = DAY0 + timedelta(days=day, seconds=(n * 7) % 86_000)
    source = 1000 + n % 5000
    failed = status == "FAILED"
    return {
        "eventId": f"run-{n:08d}", "correlationId": f"batch-{n // len(STAGES):07d}",
        "pipelineName": PIPELINES[(n // len(STAGES)) % len(PIPELINES)], "stageName": STAGES[n % len(STAGES)],
        "status": status, "eventTimestamp": started,
        "processedRecordCount": source - (n % 3) if status in ("COMPLETED", "FAILED") else source // 2,
        "sourceRecordCount": source,
        "errorMessage": f"stage {STAGES[n % len(STAGES)]} failed: timeout after {n % 90} s" if failed else None,
        "lastUpdatedAt": started + timedelta(seconds=30 + minute_offset * 60),
        "dataQualityScore": (n % 100) / 100, "attributes": {"owner": f"team-{n % 5}"},
    }


def build_table(settings, events_total: int, commits: int) -> list[str]:
    """Write the table with the real writer; return the commit instants, oldest first."""
    from obs_platform.events.codec import EventCodec, SchemaRegistry
    from obs_platform.ingestion.batch import row_schema
    from obs_platform.lakehouse.spark import build_spark_session
    from obs_platform.lakehouse.table import TableSpec
    from obs_platform.lakehouse.writer import TableWriter

    spark = build_spark_session(settings, "bench-bff-build")
    schema = row_schema(EventCodec(SchemaRegistry(settings.schema_dir)).reader.parsed)
    writer = TableWriter(spark, TableSpec.from_settings(settings), settings.home / "staging")
    per_commit = events_total // commits
    instants = []
    statuses = ["RUNNING", "COMPLETED", "COMPLETED", "COMPLETED", "FAILED", "RETRYING", "STARTED"]
    try:
        for c in range(commits):
            started = time.monotonic()
            batch = [_stage_run(n, c, statuses[n % len(statuses)]) for n in range(c * per_commit, (c + 1) * per_commit)]
            if c:  # 10% of the previous commit's runs reach a final state
                prev = range((c - 1) * per_commit, c * per_commit, 10)
                batch += [_stage_run(n, c - 1, "FAILED" if n % 70 == 0 else "COMPLETED", minute_offset=5) for n in prev]
            instants.append(writer.upsert(_rows(schema, batch), c).instant)
            print(f"commit {c + 1}/{commits}: {len(batch)} rows in {time.monotonic() - started:.1f}s -> {instants[-1]}",
                  flush=True)
        last_day = commits - 1
        base = (commits - 1) * per_commit
        for live in range(3):  # micro-batch-sized commits: 500 updates + 500 new runs
            n_new = events_total + live * 500
            batch = [_stage_run(n, last_day, "COMPLETED", minute_offset=10 + live) for n in range(base + live * 500, base + live * 500 + 500)]
            batch += [_stage_run(n, last_day, "RUNNING") for n in range(n_new, n_new + 500)]
            started = time.monotonic()
            instants.append(writer.upsert(_rows(schema, batch), commits + live).instant)
            print(f"live commit {live + 1}/3: {len(batch)} rows in {time.monotonic() - started:.1f}s -> {instants[-1]}",
                  flush=True)
    finally:
        spark.stop()
    return instants


# --- measure --------------------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def start_bff(settings, **env: str):
    import httpx

    from obs_platform_tests.conftest import free_port, wait_http

    port = free_port()
    full_env = {**{k: v for k, v in os.environ.items() if not k.startswith("OBS_BFF_")},
                "OBS_HOME": str(settings.home), "OBS_BFF_PORT": str(port), "OBS_BIND_HOST": "127.0.0.1", **env}
    log = open(settings.home / f"bff-{port}.log", "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([sys.executable, "-m", "bff"], cwd=REPO, env=full_env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/api/health", 60)
    return proc, httpx.Client(base_url=url, timeout=300)


def time_requests(client, path: str, params, reps: int, warmup: int) -> dict:
    times, size = [], 0
    for i in range(warmup + reps):
        started = time.perf_counter()
        response = client.get(path, params=params)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"{path} {params}: {response.status_code} {response.text[:300]}")
        size = len(response.content)
        if i >= warmup:
            times.append(elapsed)
    return {"p50_ms": round(percentile(times, 0.5), 2), "p95_ms": round(percentile(times, 0.95), 2),
            "mean_ms": round(statistics.fmean(times), 2), "n": len(times), "response_bytes": size}


def first_request(client, path: str, params) -> float:
    started = time.perf_counter()
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text[:300]
    return round((time.perf_counter() - started) * 1000, 2)


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def measure_refresh(settings, reps: int = 5) -> dict:
    """In process: building the view from scratch, and advancing it by the last commit (what the BFF does
    when a commit lands), on this table."""
    from obs_platform.query.embedded import EmbeddedReader

    builds, advances = [], []
    for _ in range(reps):
        reader = EmbeddedReader(settings.table_uri)
        commits = [c.instant for c in reader.commits()]
        reader.latest_commit = lambda previous=commits[1]: previous  # hold the reader one commit back
        started = time.perf_counter()
        reader.refresh()
        builds.append((time.perf_counter() - started) * 1000)
        del reader.latest_commit
        started = time.perf_counter()
        assert reader.refresh() == commits[0]
        advances.append((time.perf_counter() - started) * 1000)
    return {"view_build_from_scratch_ms_p50": round(percentile(builds, 0.5), 1),
            "view_advance_by_last_commit_ms_p50": round(percentile(advances, 0.5), 1),
            "view_advance_by_last_commit_ms_max": round(max(advances), 1)}


def cases_of(latest: str, previous: str, old: str, failed: dict) -> dict:
    return {
        "full_load_newest_1000": ("/api/events", {"limit": 1000}),
        "full_load_newest_200": ("/api/events", {"limit": 200}),
        "filtered_pipeline_status": ("/api/events", [("pipeline", "orders"), ("status", "FAILED"), ("limit", 200)]),
        "filtered_time_range": ("/api/events", {"from": "2026-10-10T00:00:00Z", "to": "2026-10-10T06:00:00Z", "limit": 200}),
        "text_search_q": ("/api/events", {"q": "TIMEOUT AFTER 42 S", "limit": 200}),
        "incremental_since_last_commit": ("/api/events/incremental", {"since": latest}),
        "incremental_one_commit_1000_rows": ("/api/events/incremental", {"since": previous}),
        "time_travel_previous_commit_1000": ("/api/events", {"as_of": previous, "limit": 1000}),
        "time_travel_middle_commit_1000": ("/api/events", {"as_of": old, "limit": 1000}),
        "time_travel_iso_time_200": ("/api/events", {"as_of": "2026-12-31T00:00:00Z", "limit": 200}),
        "journey": (f"/api/correlations/{failed['correlationId']}", None),
        "commits": ("/api/commits", None),
        "stats_1h_all": ("/api/stats", {"bucket": "1h"}),
        "stats_15m_one_day": ("/api/stats", {"bucket": "15m", "from": "2026-10-10T00:00:00Z", "to": "2026-10-11T00:00:00Z"}),
        "maintenance": ("/api/maintenance", None),
        "dead_letters": ("/api/dead-letters", None),
    }


def measure_thrift(settings, reps: int, warmup: int) -> dict:
    """The same cases through the thrift backend: PostgreSQL + metastore + Hive sync + Thrift Server, then a BFF
    with OBS_BFF_BACKEND=thrift. Everything it starts is stopped before it returns."""
    from obs_platform.sqlendpoint import (
        PostgresConfig,
        ThriftServerConfig,
        ensure_metastore_schema,
        ensure_postgres,
        start_thrift_server,
        stop_postgres,
    )
    from obs_platform_tests.conftest import free_port

    results: dict = {"setup_seconds": {}}
    pg = PostgresConfig.from_settings(settings, port=free_port())
    server = None
    try:
        started = time.perf_counter()
        ensure_postgres(pg)
        ensure_metastore_schema(settings, pg)
        results["setup_seconds"]["postgres_and_metastore"] = round(time.perf_counter() - started, 1)
        server = start_thrift_server(settings, pg, ThriftServerConfig.from_settings(settings, port=free_port()))
        results["setup_seconds"]["thrift_server_start"] = round(server.start_seconds, 1)
        started = time.perf_counter()
        env = {**os.environ, "OBS_HOME": str(settings.home), "OBS_METASTORE_PG_PORT": str(pg.port)}
        sync = subprocess.run([sys.executable, "-m", "obs_platform.sqlendpoint", "hive-sync"], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=600)
        if sync.returncode != 0:
            raise RuntimeError(f"hive sync failed: {sync.stderr[-2000:]}")
        results["setup_seconds"]["hive_sync"] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        proc, client = start_bff(settings, OBS_BFF_BACKEND="thrift", OBS_THRIFT_PORT=str(server.config.port))
        try:
            first = first_request(client, "/api/events", {"limit": 1000})
            results["startup"] = {"bff_up_and_first_full_load_ms": round((time.perf_counter() - started) * 1000, 1),
                                  "first_full_load_ms": first}
            commits = [c["instant"] for c in client.get("/api/commits", params={"limit": 1000}).json()["commits"]]
            latest, previous, old = commits[0], commits[1], commits[len(commits) // 2]
            failed = client.get("/api/events", params={"status": "FAILED", "limit": 1}).json()["events"][0]
            results["cold"] = {"at_failure_ms": first_request(client, f"/api/events/{failed['eventId']}/at-failure",
                                                              {"limit": 100})}
            results["cached"] = {}
            for name, (path, params) in cases_of(latest, previous, old, failed).items():
                results["cached"][name] = time_requests(client, path, params, reps, warmup)
                print(f"  thrift {name}: {results['cached'][name]}", flush=True)
            results["cached"]["at_failure"] = time_requests(
                client, f"/api/events/{failed['eventId']}/at-failure", {"limit": 100}, max(5, reps // 10), 1)
        finally:
            client.close()
            proc.terminate()
            proc.wait(30)
    finally:
        if server is not None:
            server.stop()
        stop_postgres(pg)
    return results


def measure(settings, reps: int, warmup: int) -> dict:
    started = time.perf_counter()
    proc, client = start_bff(settings)
    results: dict = {}
    try:
        first = first_request(client, "/api/events", {"limit": 1000})
        results["startup"] = {"bff_up_and_first_full_load_ms": round((time.perf_counter() - started) * 1000, 1),
                              "first_full_load_ms": first}
        commits = [c["instant"] for c in client.get("/api/commits", params={"limit": 1000}).json()["commits"]]
        latest, previous, old = commits[0], commits[1], commits[len(commits) // 2]
        total = client.get("/api/events", params={"limit": 1}).json()["total"]
        failed = client.get("/api/events", params={"status": "FAILED", "limit": 1}).json()["events"][0]
        # cold: the first time-travel request to a commit (its no-longer-current files read and cached)
        results["cold"] = {"time_travel_previous_commit_ms": first_request(client, "/api/events", {"as_of": previous, "limit": 1000}),
                           "time_travel_middle_commit_ms": first_request(client, "/api/events", {"as_of": old, "limit": 1000}),
                           "at_failure_ms": first_request(client, f"/api/events/{failed['eventId']}/at-failure", {"limit": 100})}
        cases = cases_of(latest, previous, old, failed)
        results["table"] = {"rows": total, "commits": len(commits), "latest": latest, "previous": previous, "middle": old}
        results["cached"] = {}
        for name, (path, params) in cases.items():
            results["cached"][name] = time_requests(client, path, params, reps, warmup)
            print(f"  cached {name}: {results['cached'][name]}", flush=True)
        results["cached"]["at_failure"] = time_requests(
            client, f"/api/events/{failed['eventId']}/at-failure", {"limit": 100}, max(5, reps // 10), 1)
        results["memory"] = {"bff_rss_mb_after_runs": rss_mb(proc.pid)}
    finally:
        client.close()
        proc.terminate()
        proc.wait(30)

    # the same table without the view: every request reads the table (the "full scan")
    proc, client = start_bff(settings, OBS_BFF_VIEW_CACHE="false")
    try:
        slow = max(5, reps // 6)
        results["uncached"] = {
            "full_scan_newest_1000": time_requests(client, "/api/events", {"limit": 1000}, slow, 1),
            "incremental_one_commit_changed_slices": time_requests(
                client, "/api/events/incremental", {"since": previous}, reps, warmup),
            "incremental_since_last_commit": time_requests(client, "/api/events/incremental", {"since": latest}, reps, warmup),
        }
        for name, row in results["uncached"].items():
            print(f"  uncached {name}: {row}", flush=True)
    finally:
        client.close()
        proc.terminate()
        proc.wait(30)
    results["refresh"] = measure_refresh(settings)
    print(f"  refresh: {results['refresh']}", flush=True)
    full = results["uncached"]["full_scan_newest_1000"]["p50_ms"]
    results["ratios"] = {
        "full_scan_over_incremental_last_commit": round(full / results["cached"]["incremental_since_last_commit"]["p50_ms"], 1),
        "full_scan_over_incremental_one_commit": round(full / results["cached"]["incremental_one_commit_1000_rows"]["p50_ms"], 1),
        "full_scan_over_uncached_incremental_one_commit": round(
            full / results["uncached"]["incremental_one_commit_changed_slices"]["p50_ms"], 1),
    }
    cached = results["cached"]
    results["targets"] = {
        "full_load_newest_1000_p95_le_100ms": cached["full_load_newest_1000"]["p95_ms"] <= 100,
        "incremental_since_last_commit_p95_le_50ms": cached["incremental_since_last_commit"]["p95_ms"] <= 50,
        "incremental_one_commit_p95_le_50ms": cached["incremental_one_commit_1000_rows"]["p95_ms"] <= 50,
        "incremental_20x_cheaper_than_full_scan": results["ratios"]["full_scan_over_incremental_last_commit"] >= 20,
        "time_travel_p95_le_300ms": max(cached[k]["p95_ms"] for k in cached if k.startswith("time_travel")) <= 300,
    }
    return results


def print_table(results: dict) -> None:
    print(f"\n{'endpoint':<48} {'p50 ms':>9} {'p95 ms':>9} {'bytes':>10}")
    for group in ("cached", "uncached"):
        for name, row in results[group].items():
            print(f"{group + ' ' + name:<48} {row['p50_ms']:>9} {row['p95_ms']:>9} {row['response_bytes']:>10}")
    if "thrift" in results:
        print(f"\n{'endpoint (embedded vs thrift)':<40} {'emb p50':>9} {'emb p95':>9} {'thr p50':>9} {'thr p95':>9}")
        for name, row in results["thrift"]["cached"].items():
            emb = results["cached"].get(name, {})
            print(f"{name:<40} {emb.get('p50_ms', ''):>9} {emb.get('p95_ms', ''):>9} {row['p50_ms']:>9} {row['p95_ms']:>9}")
        print(f"thrift setup (s): {results['thrift']['setup_seconds']}; startup: {results['thrift']['startup']}")
    print(f"\ncold (first request): {results['cold']}")
    print(f"startup: {results['startup']}")
    print(f"view refresh (in process): {results['refresh']}")
    print(f"memory: {results['memory']}")
    print(f"ratios: {results['ratios']}")
    print(f"targets: {results['targets']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path("/tmp/bench-bff"))
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--commits", type=int, default=20)
    parser.add_argument("--reps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--backends", default="embedded", help="embedded, or embedded,thrift (both in one run)")
    args = parser.parse_args()

    from obs_platform.settings import Settings

    settings = Settings(home=args.home)
    build_seconds = None
    if not (settings.table_path / ".hoodie").exists():
        started = time.monotonic()
        build_table(settings, args.events, args.commits)
        build_seconds = round(time.monotonic() - started, 1)
    if args.build_only:
        return
    results = measure(settings, args.reps, args.warmup)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if "thrift" in backends:
        results["thrift"] = measure_thrift(settings, args.reps, args.warmup)
    report = {
        "bench": "bff", "backend": ",".join(backends), "when": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "args": {k: str(v) for k, v in vars(args).items()}, "build_seconds": build_seconds,
        "client": "httpx, one keep-alive connection, sequential requests; wall time per request", **results,
    }
    out = REPO / "bench" / "reports" / f"bff-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print_table(results)
    print(f"\nwrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
