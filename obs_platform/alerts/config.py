"""The alert settings: one TOML file (``alerts.toml`` at the repo root, or ``OBS_ALERTS_FILE``), read with tomllib.

Every rule is on with the defaults below when the file is absent. The file can change any rule's knobs for all
pipelines (``[rules.<rule>]``), for one pipeline (``[pipelines."<name>".<rule>]``) or for one stage of it
(``[pipelines."<name>".stages."<stage>".<rule>]``): the most specific wins, key by key. Receivers are
``[[receivers]]`` entries (see ``Receiver``).
"""

from __future__ import annotations

import fnmatch
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from obs_platform.settings import REPO_ROOT

RULES = ("failed", "retry_loop", "stuck", "rows", "silence", "volume")
SEVERITIES = ("info", "warning", "critical")

DEFAULTS: dict[str, dict[str, Any]] = {
    # a stage run FAILED; repeats with the same error signature within window_seconds are one alert
    "failed": {"enabled": True, "severity": "critical", "window_seconds": 3600},
    # a stage RETRYING more than max_retries times in one batch
    "retry_loop": {"enabled": True, "severity": "warning", "max_retries": 3},
    # STARTED/RUNNING/RETRYING longer than limit_seconds (explicit); else learned: the percentile of the stage's
    # last history durations x factor once min_samples exist; else fallback_seconds
    "stuck": {"enabled": True, "severity": "critical", "limit_seconds": None, "percentile": 95, "factor": 3.0,
              "min_samples": 10, "history": 100, "fallback_seconds": 3600, "min_seconds": 60},
    # rows lost or multiplied between consecutive stages of a batch beyond tolerance (a share of the rows in)
    "rows": {"enabled": True, "severity": "warning", "tolerance": 0.0},
    # no new batch within limit_seconds (explicit) or median interval of the last history starts x factor
    "silence": {"enabled": True, "severity": "warning", "limit_seconds": None, "factor": 3.0, "min_samples": 5,
                "history": 50, "min_seconds": 60, "retired_after_seconds": 7 * 24 * 3600},
    # processedRecordCount with robust z = 0.6745 (x - median) / MAD above threshold, over the last history
    "volume": {"enabled": True, "severity": "warning", "threshold": 5.0, "min_samples": 10, "history": 50,
               "min_relative_mad": 0.01},
}

PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"


@dataclass(frozen=True)
class Receiver:
    """A webhook: ``kind`` json | slack | pagerduty; gets the alerts whose pipeline matches one of ``pipelines``
    (globs, default all) and whose severity is at least ``min_severity``."""

    name: str
    kind: str
    url: str
    pipelines: tuple[str, ...] = ("*",)
    min_severity: str = "info"
    routing_key: str | None = None
    timeout_seconds: float = 5.0
    max_attempts: int = 10
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 300.0
    headers: tuple[tuple[str, str], ...] = ()

    def wants(self, pipeline: str, severity: str) -> bool:
        return (SEVERITIES.index(severity) >= SEVERITIES.index(self.min_severity)
                and any(fnmatch.fnmatchcase(pipeline, p) for p in self.pipelines))


@dataclass
class AlertConfig:
    rules: dict[str, dict[str, Any]] = field(default_factory=lambda: {r: dict(v) for r, v in DEFAULTS.items()})
    pipelines: dict[str, dict[str, Any]] = field(default_factory=dict)
    receivers: list[Receiver] = field(default_factory=list)
    tick_seconds: float = 5.0
    source: str = "defaults"

    def rule(self, rule: str, pipeline: str, stage: str | None = None) -> dict[str, Any]:
        """The knobs of ``rule`` for ``pipeline`` (and ``stage``): defaults < [rules] < pipeline < stage."""
        merged = dict(self.rules[rule])
        spec = self.pipelines.get(pipeline) or {}
        merged.update(spec.get(rule) or {})
        if stage is not None:
            merged.update(((spec.get("stages") or {}).get(stage) or {}).get(rule) or {})
        return merged

    def receivers_for(self, pipeline: str, severity: str) -> list[Receiver]:
        return [r for r in self.receivers if r.wants(pipeline, severity)]


class ConfigError(ValueError):
    pass


def alerts_file() -> Path:
    return Path(os.environ.get("OBS_ALERTS_FILE") or REPO_ROOT / "alerts.toml")


def load_config(path: Path | str | None = None) -> AlertConfig:
    """Read the settings file (absent: every rule on with its defaults, no receivers)."""
    path = Path(path) if path is not None else alerts_file()
    if not path.exists():
        return AlertConfig()
    return parse_config(tomllib.loads(path.read_text()), source=str(path))


def parse_config(data: dict[str, Any], source: str = "<dict>") -> AlertConfig:
    config = AlertConfig(source=source)
    config.tick_seconds = float(data.get("tick_seconds", config.tick_seconds))
    for rule, knobs in (data.get("rules") or {}).items():
        _check_rule(rule, knobs, f"[rules.{rule}]")
        config.rules[rule].update(knobs)
    for pipeline, spec in (data.get("pipelines") or {}).items():
        for rule, knobs in spec.items():
            if rule == "stages":
                for stage, stage_spec in knobs.items():
                    for r, k in stage_spec.items():
                        _check_rule(r, k, f'[pipelines."{pipeline}".stages."{stage}".{r}]')
            else:
                _check_rule(rule, knobs, f'[pipelines."{pipeline}".{rule}]')
        config.pipelines[pipeline] = spec
    for i, spec in enumerate(data.get("receivers") or []):
        kind = spec.get("kind", "json")
        if kind not in ("json", "slack", "pagerduty"):
            raise ConfigError(f"receivers[{i}].kind {kind!r}: one of json, slack, pagerduty")
        if kind == "pagerduty" and not spec.get("routing_key"):
            raise ConfigError(f"receivers[{i}]: a pagerduty receiver needs routing_key")
        url = spec.get("url") or (PAGERDUTY_URL if kind == "pagerduty" else None)
        if not url:
            raise ConfigError(f"receivers[{i}]: url is required")
        severity = spec.get("min_severity", "info")
        if severity not in SEVERITIES:
            raise ConfigError(f"receivers[{i}].min_severity {severity!r}: one of {SEVERITIES}")
        pipelines = spec.get("pipelines", ["*"])
        config.receivers.append(Receiver(
            name=spec.get("name") or f"{kind}-{i}", kind=kind, url=url, pipelines=tuple(pipelines),
            min_severity=severity, routing_key=spec.get("routing_key"),
            timeout_seconds=float(spec.get("timeout_seconds", 5.0)), max_attempts=int(spec.get("max_attempts", 10)),
            backoff_seconds=float(spec.get("backoff_seconds", 1.0)),
            max_backoff_seconds=float(spec.get("max_backoff_seconds", 300.0)),
            headers=tuple((spec.get("headers") or {}).items())))
    names = [r.name for r in config.receivers]
    if len(names) != len(set(names)):
        raise ConfigError(f"receiver names must be unique: {names}")
    return config


def _check_rule(rule: str, knobs: Any, where: str) -> None:
    if rule not in DEFAULTS:
        raise ConfigError(f"{where}: unknown rule {rule!r}; rules are {list(DEFAULTS)}")
    if not isinstance(knobs, dict):
        raise ConfigError(f"{where}: expected a table")
    unknown = set(knobs) - set(DEFAULTS[rule])
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(DEFAULTS[rule])}")
    severity = knobs.get("severity")
    if severity is not None and severity not in SEVERITIES:
        raise ConfigError(f"{where}.severity {severity!r}: one of {SEVERITIES}")
