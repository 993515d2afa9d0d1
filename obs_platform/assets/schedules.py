"""Schedules: compaction hourly, cleaning + archival daily, table checks every 10 minutes. On by default."""

from dagster import AssetSelection, DefaultScheduleStatus, ScheduleDefinition, define_asset_job

from obs_platform.assets.table import PIPELINE_EVENTS_KEY

compaction_job = define_asset_job("compaction_job", selection=["table_compaction"],
                                  description="Compaction (clustering on copy-on-write).")
cleaning_job = define_asset_job("cleaning_job", selection=["table_cleaning", "timeline_archival"],
                                description="Cleaning to the time-travel horizon, then timeline archival.")
table_checks_job = define_asset_job("table_checks_job",
                                    selection=AssetSelection.checks_for_assets(PIPELINE_EVENTS_KEY),
                                    description="Asset checks on pipeline_events.")

compaction_schedule = ScheduleDefinition(name="compaction_hourly", job=compaction_job, cron_schedule="7 * * * *",
                                         default_status=DefaultScheduleStatus.RUNNING,
                                         description="Hourly compaction (clustering on copy-on-write).")
cleaning_schedule = ScheduleDefinition(name="cleaning_daily", job=cleaning_job, cron_schedule="17 3 * * *",
                                       default_status=DefaultScheduleStatus.RUNNING,
                                       description="Daily cleaning to the time-travel horizon, then archival.")
table_checks_schedule = ScheduleDefinition(name="table_checks_every_10_minutes", job=table_checks_job, cron_schedule="*/10 * * * *",
                                           default_status=DefaultScheduleStatus.RUNNING,
                                           description="Duplicate keys, small files, horizon, metastore schema.")

MAINTENANCE_JOBS = [compaction_job, cleaning_job, table_checks_job]
SCHEDULES = [compaction_schedule, cleaning_schedule, table_checks_schedule]
