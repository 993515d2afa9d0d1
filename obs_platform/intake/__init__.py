"""Producers beside the Avro SDK: OpenLineage RunEvents (the BFF's ``POST /api/v1/lineage``) and Dagster's own
runs (a sensor). Both map onto PipelineEvent and publish through the same Avro codec and Pub/Sub topic, so the
one streaming writer stays the table's only writer."""
