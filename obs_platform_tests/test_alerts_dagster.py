"""The alerter in Dagster: the platform's definitions carry a sensor whose evaluation records an observation of
the ``alerts`` asset with the alert counts and the evaluation lag read from a real alerts.db; the instance
stores it per key (reported as the sensor daemon reports a tick's asset events)."""

from __future__ import annotations

import time
import uuid

from dagster import DagsterInstance, build_sensor_context

from obs_platform.alerts.config import parse_config
from obs_platform.alerts.dagster import ALERTS_KEY
from obs_platform.alerts.engine import AlertEngine
from obs_platform.alerts.service import db_path
from obs_platform.alerts.store import Store
from obs_platform.assets.resources import PlatformSettings
from obs_platform.definitions import build_definitions
from obs_platform.settings import Settings


def test_the_sensor_observes_alert_counts_and_lag(tmp_path):
    settings = Settings(home=tmp_path)
    sensor = build_definitions(settings).get_sensor_def("alerts_observer")
    platform = PlatformSettings(home=str(tmp_path))
    with DagsterInstance.ephemeral() as instance:
        empty = sensor(build_sensor_context(instance=instance, resources={"platform": platform}))
        assert "no alerter state yet" in empty.skip_message

        store = Store(db_path(settings))
        engine = AlertEngine(store, parse_config({}))
        now = time.time()
        for stage in ("a", "b", "c"):
            engine.observe([{"eventId": uuid.uuid4().hex, "correlationId": "b1", "pipelineName": "p",
                             "stageName": stage, "status": "FAILED", "eventTimestamp": int(now * 1000),
                             "lastUpdatedAt": int(now * 1000), "errorMessage": "boom"}])
        engine.tick()
        with store.tx() as db:
            db.execute("UPDATE alerts SET status = 'acknowledged' WHERE stage = 'c'")
            db.execute("INSERT OR REPLACE INTO meta VALUES ('lag_seconds', '0.42')")

        result = sensor(build_sensor_context(instance=instance, resources={"platform": platform}))
        [observation] = result.asset_events
        assert observation.asset_key == ALERTS_KEY
        metadata = {k: v.value for k, v in observation.metadata.items()}
        assert metadata["open"] == 2 and metadata["acknowledged"] == 1 and metadata["opened_last_hour"] == 3
        assert metadata["evaluation_lag_seconds"] == 0.42 and metadata["seconds_since_tick"] < 60
        assert metadata["deliveries_pending"] == 0  # no receivers configured
        # what the sensor daemon does with a tick's asset events: the instance keeps them per key
        instance.report_runless_asset_event(observation)
        [stored] = instance.fetch_observations(ALERTS_KEY, limit=5).records
        assert stored.asset_observation.metadata["open"].value == 2
