"""The platform watches its own Dagster instance: every run (its own maintenance and ingestion jobs, and any
code location added to workspace.yaml) becomes a batch on the timeline, each step a stage run
(``obs_platform.intake.dagster_runs``), published through the same Avro codec and Pub/Sub topic as the SDK."""

from dagster import DefaultSensorStatus, SensorEvaluationContext, SkipReason, sensor

from obs_platform.assets.resources import PlatformSettings
from obs_platform.intake.dagster_runs import emit_new_runs


@sensor(minimum_interval_seconds=10, default_status=DefaultSensorStatus.RUNNING,
        description="Publishes the instance's run and step events (read from the event log after the sensor's "
                    "cursor) as PipelineEvents: run = batch (correlationId = run id), step = stage run. The cursor "
                    "moves only after Pub/Sub confirmed the tick's events.")
def dagster_runs_to_timeline(context: SensorEvaluationContext, platform: PlatformSettings):
    from obs_platform.intake.publish import EventPublisher

    publisher = None

    def publish(events):
        nonlocal publisher
        publisher = EventPublisher(platform.get(), source="dagster")
        publisher.publish(events)

    try:
        count, cursor = emit_new_runs(context.instance, context.cursor, publish)
    finally:
        if publisher is not None:
            publisher.close()
    context.update_cursor(cursor)
    return SkipReason(f"published {count} run/step events" if count else "no new run or step events")
