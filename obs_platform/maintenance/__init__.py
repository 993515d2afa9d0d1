"""Table services: clustering (copy-on-write) / compaction (merge-on-read), cleaning, archival, savepoints,
Hive sync. Plain functions over a Spark session and the shared TableSpec; Dagster assets call them."""
