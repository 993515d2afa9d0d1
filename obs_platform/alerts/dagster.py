"""The alerter visible in Dagster: a sensor that reads ``<home>/alerts/alerts.db`` each minute and records an
``AssetObservation`` on the ``alerts`` asset key whose metadata (plotted by Dagster per key) is the number of
open / acknowledged alerts, the alerts opened and resolved in the last hour, the outbox (pending, failed
deliveries), and the evaluation lag (publish → evaluated, of the newest evaluated message) and the age of the
last tick and of the last evaluation. It never starts a run."""

from __future__ import annotations

import time

from dagster import (
    AssetKey,
    AssetObservation,
    DefaultSensorStatus,
    MetadataValue,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from obs_platform.assets.resources import PlatformSettings

ALERTS_KEY = AssetKey("alerts")


def alert_metrics(db_file) -> dict[str, float | int | None]:
    """What the observation reports, read from the alerter's SQLite file (read-only)."""
    import sqlite3

    db = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True, timeout=10)
    try:
        now = time.time()
        by_status = dict(db.execute("SELECT status, count(*) FROM alerts GROUP BY status").fetchall())
        meta = {k: float(v) for k, v in db.execute("SELECT key, value FROM meta").fetchall()}
        deliveries = dict(db.execute("SELECT state, count(*) FROM deliveries GROUP BY state").fetchall())
        return {
            "open": by_status.get("open", 0),
            "acknowledged": by_status.get("acknowledged", 0),
            "opened_last_hour": db.execute("SELECT count(*) FROM alerts WHERE opened_at >= ?", (now - 3600,)).fetchone()[0],
            "resolved_last_hour": db.execute("SELECT count(*) FROM alerts WHERE resolved_at >= ?",
                                             (now - 3600,)).fetchone()[0],
            "deliveries_pending": deliveries.get("pending", 0),
            "deliveries_failed": deliveries.get("failed", 0),
            "evaluation_lag_seconds": meta.get("lag_seconds"),
            "seconds_since_tick": round(now - meta["ticked_at"], 3) if "ticked_at" in meta else None,
            "seconds_since_evaluation": round(now - meta["observed_at"], 3) if "observed_at" in meta else None,
        }
    finally:
        db.close()


@sensor(minimum_interval_seconds=60, default_status=DefaultSensorStatus.RUNNING,
        description="Observes the alerter (alerts.db): open/acknowledged alerts, opened/resolved in the last hour, "
                    "pending/failed deliveries, evaluation lag and the age of the last tick, as metadata of an "
                    "AssetObservation on `alerts` (Dagster plots each over time).")
def alerts_observer(context: SensorEvaluationContext, platform: PlatformSettings):
    from obs_platform.alerts.service import db_path

    path = db_path(platform.get())
    if not path.exists():
        return SkipReason(f"no alerter state yet ({path})")
    metrics = alert_metrics(path)
    metadata = {k: MetadataValue.float(float(v)) if isinstance(v, float) else MetadataValue.int(v)
                for k, v in metrics.items() if v is not None}
    return SensorResult(asset_events=[AssetObservation(asset_key=ALERTS_KEY, metadata=metadata,
                                                       description="the alerter's state")],
                        skip_reason=SkipReason(f"{metrics['open']} open, {metrics['acknowledged']} acknowledged, "
                                               f"lag {metrics['evaluation_lag_seconds']} s"))
