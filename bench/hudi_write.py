#!/usr/bin/env python3
"""bench/hudi_write: what one micro-batch's Hudi commit costs, by table layout, as the day grows.

    .venv/bin/python bench/hudi_write.py [--prefill 5000000] [--small 200] [--large 50000] [--commits 5]
                                         [--variants mor-bucket-lean,cow-simple-seed,...]

For each variant, through the platform's one write path (``lakehouse.writer.TableWriter``, as the stream
uses it), on two tables: a fresh one, and one whose day partition already holds ``--prefill`` rows (one bulk
insert, like a day at demo rate). On each: for a small and a large batch, one warm-up commit, then
``--commits`` upserts (2/3 updates of the newest keys, 1/3 new: the stream's shape). Per cell: the median
seconds per commit and the median JVM CPU seconds per commit (utime+stime of Spark's JVM from /proc).
"Cut" variants (each fixed-cost saving alone) run on the fresh table only. Then the fixed-cost parts the
writer no longer pays (schema inference of the staged batch, hudi-rs read-back of commit stats) are timed.

Writes bench/reports/hudi-write-<ts>.json and prints a Markdown table for the README.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("JAVA_HOME", "/usr/lib/jvm/java-17-openjdk-amd64")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

from obs_platform.settings import IndexType, TableType  # noqa: E402

# what the seed shipped and the lean options undo
NOT_LEAN = {"hoodie.embed.timeline.server": "true", "hoodie.write.markers.type": "TIMELINE_SERVER_BASED"}


@dataclass(frozen=True)
class Variant:
    table_type: TableType
    index: IndexType
    metadata: bool
    extra: dict = field(default_factory=dict)
    fresh_only: bool = False  # a cut: its effect is on the fixed cost


VARIANTS = {
    "cow-simple-seed": Variant(TableType.COPY_ON_WRITE, IndexType.SIMPLE, True, NOT_LEAN),
    "cow-simple-mdt-off": Variant(TableType.COPY_ON_WRITE, IndexType.SIMPLE, False, NOT_LEAN),
    "cow-bucket": Variant(TableType.COPY_ON_WRITE, IndexType.BUCKET, True, NOT_LEAN),
    "cow-record-index": Variant(TableType.COPY_ON_WRITE, IndexType.RECORD_INDEX, True, NOT_LEAN),
    "mor-bucket": Variant(TableType.MERGE_ON_READ, IndexType.BUCKET, True, NOT_LEAN),
    "mor-bucket-lean": Variant(TableType.MERGE_ON_READ, IndexType.BUCKET, False),  # what ships
    # cuts, one at a time on top of mor-bucket (fresh table)
    "cut: mor-bucket + metadata off": Variant(TableType.MERGE_ON_READ, IndexType.BUCKET, False, NOT_LEAN, True),
    "cut: mor-bucket + no timeline server": Variant(
        TableType.MERGE_ON_READ, IndexType.BUCKET, True,
        {"hoodie.embed.timeline.server": "false", "hoodie.write.markers.type": "DIRECT"}, True),
}


def rows_for(schema, first_new: int, count: int, newest: int, at: datetime, day: str):
    """``count`` rows: a third new keys from ``first_new``, the rest updates of the newest existing keys."""
    import pyarrow as pa

    new = count // 3
    updates = min(count - new, newest)
    ids = [f"run-{i}" for i in range(first_new, first_new + new)] + \
          [f"run-{i}" for i in range(newest - updates, newest)]
    ids += [f"run-{first_new + new + i}" for i in range(count - len(ids))]
    n = len(ids)
    return pa.table({
        "eventId": ids, "correlationId": [f"c{i % 997}" for i in range(n)],
        "pipelineName": [f"p{i % 7}" for i in range(n)], "stageName": [f"s{i % 4}" for i in range(n)],
        "status": ["RUNNING"] * n, "eventTimestamp": [at] * n,
        "processedRecordCount": list(range(n)), "sourceRecordCount": list(range(n)),
        "errorMessage": [None] * n, "lastUpdatedAt": [at + timedelta(milliseconds=i) for i in range(n)],
        "dataQualityScore": [None] * n, "attributes": [[]] * n, "schemaVersion": [2] * n,
        "eventDate": [day] * n,
    }, schema=schema)


class JvmCpu:
    def __init__(self, spark):
        self.pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
        self.tick = os.sysconf("SC_CLK_TCK")

    def seconds(self) -> float:
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.tick


def measure(writer, schema, cpu, start_key: int, newest: int, batch: int, commits: int, at, day):
    """One warm-up commit, then ``commits`` timed ones; returns (wall medians, cpu medians, next key)."""
    walls, cpus = [], []
    key = start_key
    for c in range(commits + 1):
        rows = rows_for(schema, key, batch, newest, at + timedelta(seconds=c), day)
        key += batch // 3
        newest = key
        t0, c0 = time.monotonic(), cpu.seconds()
        writer.upsert(rows, f"{batch}-{c}")
        if c:
            walls.append(time.monotonic() - t0)
            cpus.append(cpu.seconds() - c0)
    return statistics.median(walls), statistics.median(cpus), key


def prefill_day(spark, spec, schema, rows: int, at: datetime, day: str, extra: dict) -> None:
    """One bulk insert of ``rows`` stage runs into ``day``, generated by Spark itself (no Python rows).
    One, not several: a second bulk insert into a partition of a bucket-indexed table writes a second file
    per bucket, which Hudi then refuses ("multiple files ... belong to the same bucket id")."""
    from obs_platform.lakehouse.writer import spark_schema

    ms = int(at.timestamp() * 1000)
    frame = spark.range(0, rows).selectExpr(
        # coalesce(..., literal): Spark types `id % n` as nullable; the table's key columns are not
        "concat('run-', id) AS eventId", "coalesce(concat('c', id % 997), 'c') AS correlationId",
        "coalesce(concat('p', id % 7), 'p') AS pipelineName", "coalesce(concat('s', id % 4), 's') AS stageName",
        "'COMPLETED' AS status", f"timestamp_millis({ms}) AS eventTimestamp", "id AS processedRecordCount",
        "id AS sourceRecordCount", "CAST(NULL AS STRING) AS errorMessage",
        f"coalesce(timestamp_millis({ms} + id % 3600000), timestamp_millis({ms})) AS lastUpdatedAt",
        "CAST(NULL AS DOUBLE) AS dataQualityScore", "CAST(map() AS MAP<STRING, STRING>) AS attributes",
        "2 AS schemaVersion", f"'{day}' AS eventDate",
    ).to(spark_schema(schema))
    options = {**spec.upsert_options(), **extra, "hoodie.datasource.write.operation": "bulk_insert"}
    frame.write.format("hudi").options(**options).mode("append").save(spec.base_uri)


def run_variant(spark, root: Path, name: str, v: Variant, args, schema, cpu) -> dict:
    from obs_platform.lakehouse.table import TableSpec
    from obs_platform.lakehouse.writer import TableWriter
    from obs_platform.settings import Settings

    out = {}
    sizes = [("fresh", 0)] + ([] if v.fresh_only else [("day", args.prefill)])
    for label, prefill in sizes:
        home = root / f"{name.replace(' ', '_').replace(':', '')}-{label}"
        settings = Settings(home=home, table_type=v.table_type, table_index=v.index, table_metadata=v.metadata)
        spec = TableSpec.from_settings(settings)
        writer = TableWriter(spark, spec, home / "staging", v.extra)
        at = datetime.now(UTC).replace(microsecond=0)
        day = at.strftime("%Y/%m/%d")
        key = 0
        if prefill:
            t0 = time.monotonic()
            prefill_day(spark, spec, schema, prefill, at - timedelta(hours=1), day, v.extra)
            key = prefill
            out[f"{label}_prefill_seconds"] = round(time.monotonic() - t0, 1)
            print(f"  {name}: prefilled {prefill:,} rows in {out[f'{label}_prefill_seconds']} s", flush=True)
        for batch_label, batch in (("small", args.small), ("large", args.large)):
            wall, jcpu, key = measure(writer, schema, cpu, key, key, batch, args.commits, at, day)
            out[f"{label}_{batch_label}"] = {"seconds": round(wall, 2), "jvm_cpu_seconds": round(jcpu, 2)}
            print(f"  {name:<40} {label:<5} {batch:>6} rows: {wall:6.2f} s  {jcpu:6.2f} CPU-s per commit", flush=True)
        shutil.rmtree(home, ignore_errors=True)
    return out


def fixed_cost_parts(spark, root: Path, schema, repeats: int = 10) -> dict:
    """What the writer stopped paying per commit, each alone: schema inference of the staged batch (a Spark
    job), and reading the commit's stats back through hudi-rs (a table load) instead of the timeline file."""
    import pyarrow.parquet as pq
    from hudi import HudiTable

    from obs_platform.lakehouse.table import TableSpec
    from obs_platform.lakehouse.timeline import latest_commit_stats
    from obs_platform.lakehouse.writer import TableWriter, spark_schema
    from obs_platform.settings import Settings

    home = root / "parts"
    spec = TableSpec.from_settings(Settings(home=home))
    writer = TableWriter(spark, spec, home / "staging")
    at = datetime.now(UTC)
    rows = rows_for(schema, 0, 200, 0, at, at.strftime("%Y/%m/%d"))
    writer.upsert(rows, "seed")
    folder = home / "one"
    folder.mkdir(parents=True)
    pq.write_table(rows, folder / "p.parquet")
    given = spark_schema(rows.schema)

    def timed(fn) -> float:
        fn()
        samples = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t0)
        return round(statistics.median(samples) * 1000, 1)

    def via_hudi_rs():
        timeline = HudiTable(spec.base_uri).get_timeline()
        newest = timeline.get_completed_deltacommits(desc=True)[0]
        json.loads(timeline.get_instant_metadata_in_json(newest))

    parts = {
        "stage_read_inferred_schema_ms": timed(lambda: spark.read.parquet(str(folder)).schema),
        "stage_read_given_schema_ms": timed(lambda: spark.read.schema(given).parquet(str(folder)).schema),
        "commit_stats_hudi_rs_ms": timed(via_hudi_rs),
        "commit_stats_timeline_file_ms": timed(lambda: latest_commit_stats(spec.base_uri)),
    }
    shutil.rmtree(home, ignore_errors=True)
    return parts


def markdown(results: dict, args) -> str:
    head = (f"| variant | fresh, {args.small} rows | fresh, {args.large:,} rows | day holds {args.prefill:,}, "
            f"{args.small} rows | day holds {args.prefill:,}, {args.large:,} rows |\n|---|---|---|---|---|\n")
    lines = []
    for name, r in results.items():
        cells = []
        for key in ("fresh_small", "fresh_large", "day_small", "day_large"):
            cell = r.get(key)
            cells.append(f"{cell['seconds']} s · {cell['jvm_cpu_seconds']}" if cell else "—")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return head + "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefill", type=int, default=5_000_000)
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--large", type=int, default=50_000)
    parser.add_argument("--commits", type=int, default=5)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names (default: all)")
    args = parser.parse_args()

    from obs_platform.events.codec import EventCodec
    from obs_platform.ingestion.batch import row_schema
    from obs_platform.lakehouse.spark import build_spark_session
    from obs_platform.settings import Settings

    root = Path(tempfile.mkdtemp(prefix="bench-hudi-"))
    spark = build_spark_session(Settings(home=root), "bench-hudi-write")
    cpu = JvmCpu(spark)
    schema = row_schema(EventCodec().reader.parsed)
    results = {}
    started = time.monotonic()
    # JIT and class loading first, on a throwaway table: the first variant's fresh cells must not pay them
    warm = dict(VARIANTS)["mor-bucket-lean"]
    run_variant(spark, root, "warm-up", Variant(warm.table_type, warm.index, warm.metadata, fresh_only=True),
                argparse.Namespace(**{**vars(args), "commits": 2}), schema, cpu)
    for name in [n.strip() for n in args.variants.split(",") if n.strip()]:
        print(f"{name}", flush=True)
        results[name] = run_variant(spark, root, name, VARIANTS[name], args, schema, cpu)
    parts = fixed_cost_parts(spark, root, schema)
    print("fixed-cost parts (median ms):", parts)
    spark.stop()
    table = markdown(results, args)
    print("\nEach cell: median seconds per commit · JVM CPU seconds per commit\n" + table)
    for name, r in results.items():
        if "day_small" in r:
            ratio = {b: round(r[f"day_{b}"]["jvm_cpu_seconds"] / max(r[f"fresh_{b}"]["jvm_cpu_seconds"], 0.01), 2)
                     for b in ("small", "large")}
            ratio_s = {b: round(r[f"day_{b}"]["seconds"] / max(r[f"fresh_{b}"]["seconds"], 0.01), 2)
                       for b in ("small", "large")}
            r["day_over_fresh_cpu"], r["day_over_fresh_seconds"] = ratio, ratio_s
            print(f"  {name}: day/fresh seconds {ratio_s}, CPU {ratio}")
    out = REPO / "bench" / "reports" / f"hudi-write-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({
        "args": vars(args), "variants": results, "fixed_cost_parts_ms": parts, "markdown": table,
        "total_seconds": round(time.monotonic() - started), "load_avg_at_end": os.getloadavg(),
        "spark_master": "local[2]", "variant_specs": {k: {**v.__dict__, "table_type": v.table_type.value,
                                                          "index": v.index.value} for k, v in VARIANTS.items()},
    }, indent=2, default=str))
    print(f"report: {out.relative_to(REPO)}")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
