"""The dashboard bench's table: 5,000 stage runs (current state) written by the real writer.

    .venv/bin/python bench/dashboard_table.py [--home /tmp/bench-dashboard] [--events 5000]

Three commits through ``obs_platform.ingestion.stream.lakehouse.writer.TableWriter.upsert`` (Spark local[2] + Hudi, the
options from ``TableSpec``), fed decoded Arrow rows as the stream would be, no Pub/Sub:

- c1: the first half of the runs (STARTED / RUNNING / COMPLETED / FAILED / RETRYING mixed);
- c2: the second half, plus 10% of c1's runs moving to COMPLETED;
- c3: 300 runs of c2 moving to a final state (every 7th FAILED): a "live" micro-batch.

Expected final state: exactly ``events`` rows; 7 pipelines x 4 stages; ``lastUpdatedAt`` spread over the
12 hours after 2026-11-26T00:00Z. Skipped when ``home`` already holds the table.
"""

from __future__ import annotations

import argparse
import os
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
T0 = datetime(2026, 11, 26, tzinfo=UTC)
STATUSES = ["RUNNING", "COMPLETED", "COMPLETED", "COMPLETED", "FAILED", "RETRYING", "STARTED"]


def stage_run(n: int, total: int, status: str, later_minutes: int = 0) -> dict:
    started = T0 + timedelta(seconds=n * (12 * 3600) // total)
    source = 1000 + (n * 37) % 5000
    final = status in ("COMPLETED", "FAILED")
    return {
        "eventId": f"run-{n:06d}", "correlationId": f"batch-{n // len(STAGES):05d}",
        "pipelineName": PIPELINES[(n // len(STAGES)) % len(PIPELINES)], "stageName": STAGES[n % len(STAGES)],
        "status": status, "eventTimestamp": started,
        "processedRecordCount": source - (n % 3) if final else source // 2, "sourceRecordCount": source,
        "errorMessage": f"stage {STAGES[n % len(STAGES)]} failed: timeout after {n % 90} s" if status == "FAILED" else None,
        "lastUpdatedAt": started + timedelta(seconds=20 + later_minutes * 60),
        "dataQualityScore": (n % 100) / 100, "attributes": {"owner": f"team-{n % 5}"},
    }


def arrow_rows(schema, events: list[dict]):
    import pyarrow as pa

    from obs_platform.ingestion.batch import partition_of

    columns: dict[str, list] = {name: [] for name in schema.names}
    for e in events:
        for name in schema.names:
            if name == "eventDate":
                columns[name].append(partition_of(e["eventTimestamp"]))
            elif name == "attributes":
                columns[name].append(list((e.get("attributes") or {}).items()))
            elif name == "schemaVersion":
                columns[name].append(2)
            else:
                columns[name].append(e.get(name))
    return pa.table(columns, schema=schema)


def build_table(settings, events: int) -> list[str]:
    """Write the table with the real writer; return its commit instants, oldest first."""
    from obs_platform.events.codec import EventCodec, SchemaRegistry
    from obs_platform.ingestion.batch import row_schema
    from obs_platform.lakehouse.spark import build_spark_session
    from obs_platform.lakehouse.table import TableSpec
    from obs_platform.lakehouse.writer import TableWriter

    spark = build_spark_session(settings, "bench-dashboard-build")
    schema = row_schema(EventCodec(SchemaRegistry(settings.schema_dir)).reader.parsed)
    writer = TableWriter(spark, TableSpec.from_settings(settings), settings.home / "staging")
    half = events // 2
    batches = [
        [stage_run(n, events, STATUSES[n % len(STATUSES)]) for n in range(half)],
        [stage_run(n, events, STATUSES[n % len(STATUSES)]) for n in range(half, events)]
        + [stage_run(n, events, "COMPLETED", later_minutes=5) for n in range(0, half, 10)],
        [stage_run(n, events, "FAILED" if i % 7 == 0 else "COMPLETED", later_minutes=9)
         for i, n in enumerate(range(half, events, max(1, half // 300)))][:300],
    ]
    instants = []
    try:
        for i, batch in enumerate(batches):
            started = time.monotonic()
            instants.append(writer.upsert(arrow_rows(schema, batch), i).instant)
            print(f"commit {i + 1}/{len(batches)}: {len(batch)} rows in {time.monotonic() - started:.1f}s "
                  f"-> {instants[-1]}", flush=True)
    finally:
        spark.stop()
    return instants


def ensure_table(home: Path, events: int):
    """The Settings of a table of ``events`` rows under ``home``, building it when absent."""
    from obs_platform.settings import Settings

    settings = Settings(home=home)
    if not (settings.table_path / ".hoodie").exists():
        build_table(settings, events)
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path("/tmp/bench-dashboard"))
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args()
    ensure_table(args.home, args.events)


if __name__ == "__main__":
    main()
