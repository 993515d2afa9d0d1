"""Dagster resources: the platform's settings, read from the environment when a run starts."""


from dagster import ConfigurableResource

from obs_platform.settings import Settings


class PlatformSettings(ConfigurableResource):
    """Wraps the platform's one settings object. Values come from ``OBS_*`` variables at run start,
    never at import; ``overrides`` lets a test point a run at a temporary home."""

    home: str | None = None

    def get(self) -> Settings:
        return Settings(home=self.home) if self.home else Settings()
