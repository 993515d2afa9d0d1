"""The BFF's own settings (``OBS_BFF_*``), next to the platform's ``Settings`` (``OBS_*``), read at start-up.

| variable | default | meaning |
|---|---|---|
| ``OBS_BFF_TOKEN`` | unset | when set, every /api route but /api/health needs ``Authorization: Bearer <token>`` |
| ``OBS_BFF_CORS_ORIGINS`` | the dashboard's | comma-separated origins allowed by CORS |
| ``OBS_BFF_BACKEND`` | ``embedded`` | the query backend (``obs_platform.query.BACKENDS``) |
| ``OBS_BFF_VIEW_CACHE`` | ``true`` | keep the table's current state in memory (``false``: read the table per request) |
| ``OBS_BFF_HISTORY_CACHE_ROWS`` | 1000000 | rows of older file slices kept for time travel |
| ``OBS_BFF_STREAM_POLL_SECONDS`` | 0.5 | how often the one timeline watcher looks for a new commit |
| ``OBS_BFF_STREAM_HEARTBEAT_SECONDS`` | 15 | SSE comment lines keeping idle connections open |
| ``OBS_BFF_STREAM_QUEUE_SIZE`` | 256 | commits buffered per SSE client; a client that falls further behind is closed |
| ``OBS_BFF_LIVE_PATH`` | ``true`` | the live path: read the events topic through a subscription of this process's own and push rows as ``pending`` on /api/stream before their commit (``false``: commits only) |
| ``OBS_BFF_LIVE_SUBSCRIPTION_TTL_HOURS`` | 24 | the live subscription's expiration policy: Pub/Sub deletes it after this long unused (24 h is Pub/Sub's minimum) |
| ``OBS_BFF_LIVE_BATCH_MS`` | 50 | rows from the bus arriving within this window go out as one ``pending`` event |
| ``OBS_BFF_ALERTS_ENGINE`` | ``true`` | run the alerter (``obs_platform.alerts``) in this process: evaluate the rules from the ``<topic>-alerts`` subscription and deliver notifications (``false``: only serve /api/alerts from ``<home>/alerts/alerts.db``, e.g. beside ``python -m obs_platform.alerts``) |
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from obs_platform.settings import Settings


class BffSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OBS_BFF_", extra="ignore")

    token: SecretStr | None = Field(default=None, description="Bearer token; unset = no auth.")
    cors_origins: str | None = Field(default=None, description="Comma-separated; default: the dashboard's origin.")
    backend: str = "embedded"
    view_cache: bool = True
    history_cache_rows: int = Field(default=1_000_000, ge=0)
    stream_poll_seconds: float = Field(default=0.5, gt=0, le=60)
    stream_heartbeat_seconds: float = Field(default=15.0, gt=0, le=300)
    stream_queue_size: int = Field(default=256, ge=1)
    live_path: bool = Field(default=True, description="Push bus events as pending before their commit.")
    live_subscription_ttl_hours: int = Field(default=24, ge=24, le=31 * 24)
    live_batch_ms: float = Field(default=50.0, ge=0, le=2000)
    alerts_engine: bool = Field(default=True, description="Evaluate alert rules and deliver notifications here.")

    def origins(self, settings: Settings) -> list[str]:
        if self.cors_origins:
            return [o.strip() for o in self.cors_origins.split(",") if o.strip()]
        return [f"http://{settings.bind_host}:{settings.dashboard_port}", f"http://localhost:{settings.dashboard_port}"]


@lru_cache(maxsize=1)
def get_bff_settings() -> BffSettings:
    return BffSettings()
