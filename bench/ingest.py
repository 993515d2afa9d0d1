#!/usr/bin/env python3
"""bench/ingest: publish at a fixed rate for a fixed time; report sustained events/s into the Hudi table,
publish-to-commit latency (p50/p95) and what the ingestion costs in CPU, on this machine.

    .venv/bin/python bench/ingest.py --rate 5000 --duration 120 [--trigger 1] [--max-batch 50000]
    .venv/bin/python bench/ingest.py --demo              # 20 events/s for 120 s: cores used by the ingestion
    .venv/bin/python bench/ingest.py --backlog 1000000   # publish first, then start the stream: drain rate

CPU is the ingestion's own (its Python driver and Spark's JVM, utime+stime from /proc) over the measured
window, so "cores" = CPU seconds / wall seconds; the publisher and the emulator are not counted.

Runs on real parts: a Pub/Sub emulator on a free port, a publisher in its own process (the SDK's codec
and a batching Pub/Sub client, paced), and the streaming ingestion in this process (Spark local[2] + Hudi).
Latency is per message: commit completion minus Pub/Sub publish time, weighted over every committed
message. Sustained throughput counts only the measurement window (after a warm-up), and the report says
whether the backlog grew. Writes bench/reports/ingest-<timestamp>.json and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("JAVA_HOME", "/usr/lib/jvm/java-17-openjdk-amd64")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def publisher_process(settings_json: str, rate: float, duration: float, counter, limit: int = 0) -> None:
    from obs_platform.bus.client import publisher, topic_path
    from obs_platform.events.codec import EventCodec
    from obs_platform.settings import Settings

    settings = Settings.model_validate_json(settings_json)
    client = publisher(settings, max_latency_s=0.01, max_messages=1000)
    topic = topic_path(settings)
    codec = EventCodec()
    started = time.monotonic()
    sent = 0
    futures = []
    statuses = ["STARTED", "RUNNING", "COMPLETED"]
    while time.monotonic() - started < duration and not (limit and sent >= limit):
        now_ms = int(time.time() * 1000)
        # each stage run: 3 states; ~1/3 of the messages are new keys, 2/3 updates
        run = sent // 3
        data = codec.encode({
            "eventId": f"bench-{os.getpid()}-{run}", "correlationId": f"corr-{run // 4}",
            "pipelineName": f"pipeline-{run % 7}", "stageName": f"stage-{run % 4}",
            "status": statuses[sent % 3], "eventTimestamp": now_ms - (sent % 3) * 10,
            "processedRecordCount": sent, "sourceRecordCount": sent, "lastUpdatedAt": now_ms,
        })
        futures.append(client.publish(topic, data))
        sent += 1
        if len(futures) >= 5000:
            for f in futures:
                f.result()
            futures.clear()
            counter.value = sent
        ahead = sent / rate - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)
    for f in futures:
        f.result()
    counter.value = sent


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def _tree_cpu_seconds(pid: int) -> float:
    total = 0.0
    for p in [pid, *_children(pid)]:
        try:
            total += _cpu_seconds(p) if p == pid else _tree_cpu_seconds(p)
        except OSError:
            continue
    return total


def ingestion_cpu_seconds() -> float:
    """CPU of this process (the stream's driver) and its Spark JVM; not the publisher's or the emulator's
    (also children of this process, so they are left out by name)."""
    me = os.getpid()
    total = _cpu_seconds(me)
    for child in _children(me):
        try:
            with open(f"/proc/{child}/comm") as f:
                if f.read().strip() == "java":
                    total += _cpu_seconds(child)
        except OSError:
            continue
    return total


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=5000)
    parser.add_argument("--duration", type=float, default=120)
    parser.add_argument("--warmup", type=float, default=30, help="seconds excluded from the throughput window")
    parser.add_argument("--trigger", type=float, default=1.0)
    parser.add_argument("--demo", action="store_true", help="the make-up demo rate: 20 events/s for 120 s")
    parser.add_argument("--backlog", type=int, default=0,
                        help="publish this many messages with no stream running, then start it: the drain rate")
    parser.add_argument("--max-batch", type=int, default=50_000)
    parser.add_argument("--pull-threads", type=int, default=None, help="default: the pull_threads setting")
    parser.add_argument("--emulator", choices=["auto", "gcloud", "pstest"], default="auto",
                        help="which Pub/Sub emulator (pstest, in Go, uses less CPU than gcloud's Java one)")
    args = parser.parse_args()
    if args.demo:
        args.rate, args.duration, args.warmup = 20.0, 120.0, 30.0

    import logging

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("obs_platform.ingestion.stream").setLevel(logging.INFO)
    from obs_platform.bus.client import ensure_topic_and_subscription
    from obs_platform.bus.emulator import start_emulator
    from obs_platform.ingestion.stream import CommitReport, run_ingestion
    from obs_platform.settings import Settings
    from obs_platform_tests.conftest import free_port

    home = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    settings = Settings(home=home, pubsub_port=free_port(), trigger_seconds=args.trigger,
                        max_messages_per_batch=args.max_batch, ack_deadline_seconds=60,
                        **({"pull_threads": args.pull_threads} if args.pull_threads else {}))
    emulator = start_emulator(settings, kind=None if args.emulator == "auto" else args.emulator,
                              log_path=home / "pubsub.log")
    os.environ["PUBSUB_EMULATOR_HOST"] = emulator.address
    ensure_topic_and_subscription(settings)

    commits: list[tuple[float, CommitReport]] = []
    stop = threading.Event()
    stream = threading.Thread(target=run_ingestion,
                              args=(settings, lambda r: commits.append((time.monotonic(), r)), stop), daemon=True)
    counter = mp.Value("q", 0)
    drain = {}
    if args.backlog:  # the backlog first, with no stream running; then the stream drains it
        pub = mp.Process(target=publisher_process, args=(settings.model_dump_json(), 1e9, 1e9, counter, args.backlog))
        t0 = time.monotonic()
        pub.start()
        pub.join()
        drain["published"], drain["publish_seconds"] = counter.value, round(time.monotonic() - t0, 1)
        print(f"backlog of {counter.value:,} messages published in {drain['publish_seconds']} s", flush=True)
        t_stream = time.monotonic()
        cpu0, emu0 = ingestion_cpu_seconds(), _tree_cpu_seconds(emulator.process.pid)
        stream.start()
        deadline = time.monotonic() + 1800
        while sum(r.rows_written + r.dead_letters for _, r in commits) < counter.value and time.monotonic() < deadline:
            time.sleep(0.5)
        cpu_ingest, cpu_emu = ingestion_cpu_seconds() - cpu0, _tree_cpu_seconds(emulator.process.pid) - emu0
        stop.set()
        stream.join(120)
        emulator.stop()
        first_start = commits[0][0] - commits[0][1].batch_seconds if commits else t_stream
        done_at = commits[-1][0] if commits else time.monotonic()
        rows = sum(r.rows_written for _, r in commits)
        secs = [r.batch_seconds for _, r in commits]
        report = {
            "mode": "drain", "emulator": emulator.kind, "load_avg_at_end": os.getloadavg(), **drain,
            "committed": rows, "commits": len(commits), "spark_start_seconds": round(first_start - t_stream, 1),
            "drain_seconds": round(done_at - first_start, 1),
            "drain_events_per_s": round(rows / max(done_at - first_start, 1e-9), 1),
            "median_batch_rows": statistics.median([r.rows_written for _, r in commits]) if commits else 0,
            "median_batch_seconds": statistics.median(secs) if secs else None,
            "p95_batch_seconds": round(percentile(secs, 0.95), 2) if secs else None,
            # where the 2 cores went during the drain (incl. Spark's start): the bound the ingestion alone has
            "cpu_seconds": {"ingestion": round(cpu_ingest, 1), "emulator": round(cpu_emu, 1)},
            "ingestion_cpu_ms_per_event": round(1000 * cpu_ingest / max(rows, 1), 3),
            "events_per_s_if_the_ingestion_had_2_cores": round(2 * rows / max(cpu_ingest, 1e-9)),
            "phase_seconds_total": {phase: round(sum(getattr(r, f"{phase}_seconds") for _, r in commits), 1)
                                    for phase in ("pull", "decode", "write", "ack")},
        }
        out = REPO / "bench" / "reports" / f"ingest-drain-{time.strftime('%Y%m%d-%H%M%S')}.json"
        out.write_text(json.dumps(report, indent=2))
        print(json.dumps(report, indent=2))
        print(f"report: {out.relative_to(REPO)}")
        return
    stream.start()
    # let the stream start (Spark, first commit) before traffic, so the warm-up is the stream's, not the JVM's
    time.sleep(15)
    pub = mp.Process(target=publisher_process, args=(settings.model_dump_json(), args.rate, args.duration, counter))
    t_start = time.monotonic()
    pub.start()
    time.sleep(args.warmup)
    cpu_at, cpu_t = ingestion_cpu_seconds(), time.monotonic()
    pub.join()
    cpu_used, cpu_wall = ingestion_cpu_seconds() - cpu_at, time.monotonic() - cpu_t
    published = counter.value
    t_pub_end = time.monotonic()
    # drain: wait until everything published is committed (or give up after 120 s)
    deadline = time.monotonic() + 120
    while sum(r.rows_written + r.dead_letters for _, r in commits) < published and time.monotonic() < deadline:
        time.sleep(0.5)
    stop.set()
    stream.join(120)
    emulator.stop()

    window = [(t, r) for t, r in commits if t_start + args.warmup <= t <= t_pub_end]
    committed_in_window = sum(r.rows_written for _, r in window)
    window_seconds = (window[-1][0] - (t_start + args.warmup)) if window else float("nan")
    # per-batch median latency weighted by batch size; p95 from batch medians and maxima (conservative)
    lat_p50 = [r.median_publish_to_commit_s for t, r in commits if t >= t_start + args.warmup for _ in range(max(1, r.rows_written // 100))]
    lat_max = [r.oldest_publish_to_commit_s for t, r in commits if t >= t_start + args.warmup for _ in range(max(1, r.rows_written // 100))]
    batch_secs = [r.batch_seconds for _, r in commits]
    report = {
        "mode": "demo" if args.demo else "rate", "emulator": emulator.kind, "load_avg_at_end": os.getloadavg(),
        "ingestion_cpu_seconds": round(cpu_used, 2), "cpu_window_seconds": round(cpu_wall, 1),
        "ingestion_cores": round(cpu_used / cpu_wall, 3),
        "cpu_ms_per_event": round(1000 * cpu_used / max(1.0, args.rate * cpu_wall), 2),
        "rate_target": args.rate, "duration_s": args.duration, "trigger_s": args.trigger, "max_batch": args.max_batch,
        "published": published, "committed_total": sum(r.rows_written for _, r in commits),
        "publish_rate_achieved": round(published / (t_pub_end - t_start), 1),
        "sustained_events_per_s": round(committed_in_window / window_seconds, 1) if window else None,
        "latency_p50_s": round(percentile(lat_p50, 0.5), 2),
        "latency_p95_s": round(percentile(lat_max, 0.95), 2),
        "commits": len(commits), "median_batch_rows": statistics.median([r.rows_written for _, r in commits]) if commits else 0,
        "median_batch_seconds": statistics.median(batch_secs) if batch_secs else None,
        "median_phase_seconds": {phase: statistics.median([getattr(r, f"{phase}_seconds") for _, r in commits])
                                 for phase in ("pull", "decode", "write", "ack")} if commits else {},
        "backlog_growing": any(r.hit_batch_limit for _, r in window[-3:]),
        "drained_within_120s": sum(r.rows_written + r.dead_letters for _, r in commits) >= published,
    }
    out = REPO / "bench" / "reports" / f"ingest-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print(f"report: {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
