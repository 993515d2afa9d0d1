"""obs-platform: data-pipeline observability on Pub/Sub, Spark, Apache Hudi and Dagster.

Packages follow the data flow and import only what lies below them:
settings -> events -> bus -> lakehouse -> sdk/demo -> ingestion -> maintenance -> query -> Dagster edges.
"""
