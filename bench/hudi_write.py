#!/usr/bin/env python3
"""bench/hudi_write: what one micro-batch's Hudi commit costs, by writer option set, in one run.

    .venv/bin/python bench/hudi_write.py [--rows 50000] [--commits 6]

For each variant: a fresh table, then ``--commits`` upserts of ``--rows`` rows each (a third new stage runs,
two thirds updates of the previous batch's runs — the stream's shape), through the real writer path
(staged Parquet -> Spark -> Hudi with TableSpec.upsert_options()). Reports the median seconds per commit
(first commit excluded: it creates the table) and rows/s. Writes bench/reports/hudi-write-<ts>.json.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("JAVA_HOME", "/usr/lib/jvm/java-17-openjdk-amd64")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

VARIANTS = {
    "default (as shipped)": {},
    "metadata table off": {"hoodie.metadata.enable": "false"},
    "small-file packing on (100 MB)": {"hoodie.parquet.small.file.limit": "104857600"},
}


def batch(schema, start: int, rows: int, now: datetime):
    import pyarrow as pa

    new = rows // 3
    ids = [f"run-{i}" for i in range(start, start + new)] + [f"run-{i}" for i in range(max(0, start - (rows - new)), start)]
    ids = ids[:rows] + [f"run-x{i}" for i in range(rows - len(ids[:rows]))]
    n = len(ids)
    cols = {name: [None] * n for name in schema.names}
    cols.update(eventId=ids, correlationId=[f"c{i % 997}" for i in range(n)], pipelineName=[f"p{i % 7}" for i in range(n)],
                stageName=[f"s{i % 4}" for i in range(n)], status=["RUNNING"] * n, eventTimestamp=[now] * n,
                lastUpdatedAt=[now + timedelta(milliseconds=i) for i in range(n)], processedRecordCount=list(range(n)),
                sourceRecordCount=list(range(n)), schemaVersion=[2] * n, eventDate=[now.strftime("%Y/%m/%d")] * n,
                attributes=[[]] * n)
    return pa.table(cols, schema=schema)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--commits", type=int, default=6)
    args = parser.parse_args()
    import pyarrow.parquet as pq

    from obs_platform.events.codec import EventCodec
    from obs_platform.ingestion.batch import row_schema
    from obs_platform.lakehouse.spark import build_spark_session
    from obs_platform.lakehouse.table import TableSpec
    from obs_platform.settings import Settings

    root = Path(tempfile.mkdtemp(prefix="bench-hudi-"))
    spark = build_spark_session(Settings(home=root), "bench-hudi-write")
    schema = row_schema(EventCodec().reader.parsed)
    results = {}
    for name, extra in VARIANTS.items():
        settings = Settings(home=root / name.split()[0])
        spec = TableSpec.from_settings(settings)
        options = {**spec.upsert_options(), **extra}
        times = []
        now = datetime.now(UTC)
        for c in range(args.commits):
            staged = root / "staged"
            shutil.rmtree(staged, ignore_errors=True)
            staged.mkdir()
            pq.write_table(batch(schema, c * (args.rows // 3), args.rows, now + timedelta(seconds=c)), staged / "p.parquet")
            t0 = time.monotonic()
            spark.read.parquet(str(staged)).write.format("hudi").options(**options).mode("append").save(spec.base_uri)
            times.append(time.monotonic() - t0)
        median = statistics.median(times[1:])
        results[name] = {"seconds_per_commit": [round(t, 2) for t in times], "median_s": round(median, 2),
                         "rows_per_s": round(args.rows / median)}
        print(f"{name:<34} median {median:6.2f} s/commit  {args.rows / median:8.0f} rows/s   {results[name]['seconds_per_commit']}")
    spark.stop()
    out = REPO / "bench" / "reports" / f"hudi-write-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"rows_per_commit": args.rows, "commits": args.commits, "variants": results,
                               "load_avg_at_end": os.getloadavg()}, indent=2))
    print(f"report: {out.relative_to(REPO)}")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
