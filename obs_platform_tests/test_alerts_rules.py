"""Each alert rule on a crafted event sequence, evaluated by the real engine on a real SQLite file: it opens
when the condition appears, groups repeats, and resolves when the condition clears; the outbox holds one
notification per transition and receiver; a new engine on the same file repeats nothing."""

from __future__ import annotations

import json
import uuid

import pytest

from obs_platform.alerts.config import ConfigError, load_config, parse_config
from obs_platform.alerts.engine import AlertEngine, signature
from obs_platform.alerts.store import Store

T0 = 1_790_000_000.0  # epoch seconds


class Clock:
    def __init__(self, now: float = T0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def ev(pipeline, stage, status, at, batch="b1", event_id=None, started=None, processed=None, source=None,
       error=None) -> dict:
    return {"eventId": event_id or uuid.uuid4().hex, "correlationId": batch, "pipelineName": pipeline,
            "stageName": stage, "status": status, "eventTimestamp": int((started or at) * 1000),
            "lastUpdatedAt": int(at * 1000), "processedRecordCount": processed, "sourceRecordCount": source,
            "errorMessage": error, "attributes": {}}


RECEIVER = {"receivers": [{"name": "hook", "kind": "json", "url": "http://127.0.0.1:9/none"}]}


@pytest.fixture
def make(tmp_path):
    def build(config: dict | None = None, clock: Clock | None = None) -> AlertEngine:
        return AlertEngine(Store(tmp_path / "alerts.db"), parse_config({**RECEIVER, **(config or {})}),
                           clock or Clock())
    return build


def alerts(engine: AlertEngine, rule: str | None = None) -> list[dict]:
    rows = engine.store.connect().execute("SELECT * FROM alerts ORDER BY id").fetchall()
    return [dict(r) for r in rows if rule is None or r["rule"] == rule]


def outbox(engine: AlertEngine) -> list[tuple[int, str]]:
    rows = engine.store.connect().execute("SELECT alert_id, payload FROM deliveries ORDER BY id").fetchall()
    return [(r[0], json.loads(r[1])["event"]) for r in rows]


def test_signature_ignores_what_varies():
    a = signature("Timeout after 30012 ms reading s3://bucket/part-00017 (request 9f86d081884c7d65, "
                  "run 123e4567-e89b-12d3-a456-426614174000)")
    b = signature("Timeout after 30877 ms reading s3://bucket/part-00002 (request 0a1b2c3d4e5f6a7b, "
                  "run 00000000-e89b-12d3-a456-426614174999)")
    assert a == b
    assert signature("Timeout after 3 ms") != signature("Connection refused")


def test_five_identical_failures_are_one_alert_with_count_five_then_resolved_by_completion(make):
    engine = make()
    for i in range(5):
        engine.observe([ev("orders", "load", "FAILED", T0 + i * 10, batch=f"b{i}",
                           error=f"Timeout after {1000 + i} ms on partition {i}")])
    engine.observe([ev("orders", "load", "FAILED", T0 + 60, batch="b9", error="disk full")])
    failed = alerts(engine, "failed")
    assert [(a["count"], a["status"]) for a in failed] == [(5, "open"), (1, "open")]
    assert failed[0]["signature"] == "Timeout after # ms on partition #"
    assert outbox(engine) == [(failed[0]["id"], "open"), (failed[1]["id"], "open")]  # no storm: 2 pages, not 6
    engine.observe([ev("orders", "load", "COMPLETED", T0 + 100, batch="b10", processed=5)])
    assert [a["status"] for a in alerts(engine, "failed")] == ["resolved", "resolved"]
    assert [k for _, k in outbox(engine)] == ["open", "open", "resolve", "resolve"]


def test_a_failure_after_the_window_opens_a_new_alert(make):
    engine = make({"rules": {"failed": {"window_seconds": 60}}})
    engine.observe([ev("p", "s", "FAILED", T0, error="boom 1")])
    engine.observe([ev("p", "s", "FAILED", T0 + 30, error="boom 2")])
    engine.observe([ev("p", "s", "FAILED", T0 + 200, error="boom 3")])
    assert [a["count"] for a in alerts(engine, "failed")] == [2, 1]


def test_the_same_event_twice_changes_nothing(make):
    engine = make()
    event = ev("p", "s", "FAILED", T0, error="boom")
    assert engine.observe([event]) == 1
    assert engine.observe([event]) == 0  # redelivered by Pub/Sub after a crash before the ack
    assert [a["count"] for a in alerts(engine)] == [1] and len(outbox(engine)) == 1


def test_retry_loop_above_n_then_resolved_when_the_stage_ends(make):
    engine = make({"rules": {"retry_loop": {"max_retries": 2}}})
    run = uuid.uuid4().hex
    engine.observe([ev("p", "extract", "STARTED", T0, event_id=run)])
    for i in range(2):
        engine.observe([ev("p", "extract", "RETRYING", T0 + 1 + i, event_id=run, started=T0, error="429")])
    assert alerts(engine, "retry_loop") == []  # 2 is not more than 2
    engine.observe([ev("p", "extract", "RETRYING", T0 + 5, event_id=run, started=T0, error="429")])
    engine.observe([ev("p", "extract", "RETRYING", T0 + 6, event_id=run, started=T0, error="429")])
    [alert] = alerts(engine, "retry_loop")
    assert alert["status"] == "open" and alert["count"] == 4 and alert["correlation_id"] == "b1"
    engine.observe([ev("p", "extract", "RETRYING", T0 + 7, batch="b2", error="429")])  # another batch: its own count
    assert len(alerts(engine, "retry_loop")) == 1
    engine.observe([ev("p", "extract", "COMPLETED", T0 + 9, event_id=run, started=T0)])
    assert alerts(engine, "retry_loop")[0]["status"] == "resolved"


def test_stuck_with_an_explicit_limit_fires_on_the_tick_and_resolves_when_the_run_ends(make):
    clock = Clock()
    engine = make({"pipelines": {"p": {"stages": {"slow": {"stuck": {"limit_seconds": 120}}}}}}, clock)
    run = uuid.uuid4().hex
    engine.observe([ev("p", "slow", "STARTED", T0, event_id=run), ev("p", "other", "STARTED", T0)])
    clock.now = T0 + 100
    engine.tick()
    assert alerts(engine, "stuck") == []
    clock.now = T0 + 130
    engine.tick()  # no new event: the clock alone
    [alert] = alerts(engine, "stuck")
    assert alert["stage"] == "slow" and alert["event_id"] == run and "limit 120 s, configured" in alert["summary"]
    engine.tick()
    assert len(alerts(engine, "stuck")) == 1  # not again
    engine.observe([ev("p", "slow", "COMPLETED", T0 + 140, event_id=run, started=T0)])
    assert alerts(engine, "stuck")[0]["status"] == "resolved"


def test_stuck_learns_the_limit_from_the_stages_history(make):
    clock = Clock()
    engine = make({"rules": {"stuck": {"min_samples": 10, "factor": 3, "percentile": 95, "min_seconds": 1}}}, clock)
    for i in range(10):
        start = T0 + i * 100
        engine.observe([ev("p", "t", "COMPLETED", start + 10 + i % 3, started=start, batch=f"b{i}")])
    run = uuid.uuid4().hex
    engine.observe([ev("p", "t", "RUNNING", T0 + 2000, event_id=run)])
    clock.now = T0 + 2000 + 30  # p95 ~ 12 s x 3 = 36 s
    engine.tick()
    assert alerts(engine, "stuck") == []
    clock.now = T0 + 2000 + 40
    engine.tick()
    [alert] = alerts(engine, "stuck")
    assert json.loads(alert["details"])["limitFrom"].startswith("learned: p95 of 10 runs")
    assert 35 <= json.loads(alert["details"])["limitSeconds"] <= 37


def test_rows_lost_between_stages_then_the_next_batch_hands_over_in_full(make):
    engine = make()
    engine.observe([ev("p", "extract", "COMPLETED", T0 + 10, started=T0, processed=1000, batch="b1"),
                    ev("p", "load", "RUNNING", T0 + 12, started=T0 + 11, source=990, batch="b1")])
    [alert] = alerts(engine, "rows")
    assert alert["status"] == "open" and alert["stage"] == "load" and alert["correlation_id"] == "b1"
    assert json.loads(alert["details"])["delta"] == -10 and "10 rows lost" in alert["summary"]
    engine.observe([ev("p", "extract", "COMPLETED", T0 + 110, started=T0 + 100, processed=500, batch="b2"),
                    ev("p", "load", "COMPLETED", T0 + 120, started=T0 + 111, source=500, processed=500, batch="b2")])
    assert alerts(engine, "rows")[0]["status"] == "resolved"


def test_rows_multiplied_within_tolerance_is_quiet(make):
    engine = make({"rules": {"rows": {"tolerance": 0.05}}})
    engine.observe([ev("p", "a", "COMPLETED", T0 + 10, started=T0, processed=100),
                    ev("p", "b", "COMPLETED", T0 + 20, started=T0 + 11, processed=104)])
    assert alerts(engine, "rows") == []
    engine.observe([ev("p", "a", "COMPLETED", T0 + 110, started=T0 + 100, processed=100, batch="b2"),
                    ev("p", "b", "COMPLETED", T0 + 120, started=T0 + 111, processed=200, batch="b2")])
    assert "100 rows multiplied" in alerts(engine, "rows")[0]["summary"]


def test_silence_learned_from_cadence_fires_on_the_tick_and_resolves_when_a_batch_starts(make):
    clock = Clock()
    engine = make({"rules": {"silence": {"min_samples": 5, "factor": 3, "min_seconds": 1}}}, clock)
    for i in range(6):
        engine.observe([ev("hourly", "extract", "STARTED", T0 + i * 60, batch=f"b{i}")])
    last = T0 + 5 * 60
    clock.now = last + 170
    engine.tick()
    assert alerts(engine, "silence") == []
    clock.now = last + 190  # median 60 s x 3
    engine.tick()
    [alert] = alerts(engine, "silence")
    assert alert["pipeline"] == "hourly" and alert["stage"] is None
    engine.observe([ev("hourly", "extract", "STARTED", last + 200, batch="b6")])
    assert alerts(engine, "silence")[0]["status"] == "resolved"


def test_volume_far_from_the_median_by_mad_then_typical_again(make):
    engine = make()
    for i, n in enumerate([1000, 1010, 990, 1005, 995, 1002, 998, 1020, 980, 1001]):
        engine.observe([ev("p", "load", "COMPLETED", T0 + i * 60, batch=f"b{i}", processed=n)])
    assert alerts(engine, "volume") == []
    engine.observe([ev("p", "load", "COMPLETED", T0 + 900, batch="low", processed=120)])
    [alert] = alerts(engine, "volume")
    assert alert["status"] == "open" and "far below" in alert["summary"]
    assert json.loads(alert["details"])["robustZ"] < -5
    engine.observe([ev("p", "load", "COMPLETED", T0 + 960, batch="ok", processed=1003)])
    assert alerts(engine, "volume")[0]["status"] == "resolved"


def test_rules_can_be_turned_off_per_pipeline(make):
    engine = make({"pipelines": {"noisy": {"failed": {"enabled": False}}}})
    engine.observe([ev("noisy", "s", "FAILED", T0, error="x"), ev("quiet", "s", "FAILED", T0, error="x")])
    assert [a["pipeline"] for a in alerts(engine)] == ["quiet"]


def test_a_new_engine_on_the_same_file_repeats_nothing(tmp_path):
    config = parse_config(RECEIVER)
    first = AlertEngine(Store(tmp_path / "a.db"), config, Clock())
    event = ev("p", "s", "FAILED", T0, error="boom")
    first.observe([event])
    second = AlertEngine(Store(tmp_path / "a.db"), config, Clock())  # a restart
    second.observe([event])  # Pub/Sub redelivers what was not acked
    second.observe([ev("p", "s", "COMPLETED", T0 + 5)])
    assert [k for _, k in outbox(second)] == ["open", "resolve"]


def test_the_settings_file(tmp_path):
    path = tmp_path / "alerts.toml"
    path.write_text('[rules.stuck]\nfallback_seconds = 600\n[pipelines."orders".stuck]\nfactor = 5.0\n'
                    '[pipelines."orders".stages."load".stuck]\nlimit_seconds = 90\n'
                    '[[receivers]]\nname = "pd"\nkind = "pagerduty"\nrouting_key = "R"\nmin_severity = "critical"\n'
                    'pipelines = ["orders*"]\n')
    config = load_config(path)
    assert config.rule("stuck", "orders", "load")["limit_seconds"] == 90
    assert config.rule("stuck", "orders", "other")["factor"] == 5.0
    assert config.rule("stuck", "other", "load")["fallback_seconds"] == 600
    assert [r.name for r in config.receivers_for("orders-eu", "critical")] == ["pd"]
    assert config.receivers_for("orders-eu", "warning") == [] and config.receivers_for("billing", "critical") == []
    path.write_text("[rules.stuk]\nlimit_seconds = 1\n")
    with pytest.raises(ConfigError, match="unknown rule 'stuk'"):
        load_config(path)
    assert load_config(tmp_path / "absent.toml").rule("failed", "any")["enabled"] is True


def test_the_shipped_settings_file_is_the_defaults_and_its_commented_examples_are_valid():
    import re
    import tomllib

    from obs_platform.alerts.config import DEFAULTS
    from obs_platform.settings import REPO_ROOT

    text = (REPO_ROOT / "alerts.toml").read_text()
    assert load_config(REPO_ROOT / "alerts.toml").rules == DEFAULTS
    uncommented = "\n".join(line[2:] for line in text.splitlines() if re.match(r"# (\[|[A-Za-z_]+ = )", line))
    config = parse_config(tomllib.loads(uncommented))
    assert [r.kind for r in config.receivers] == ["json", "slack", "pagerduty"]
    assert config.rule("stuck", "orders", "load")["limit_seconds"] == 120
    assert config.rule("failed", "sandbox")["enabled"] is False


def test_a_pulled_batch_out_of_order_is_evaluated_oldest_first(make):
    engine = make()
    run = uuid.uuid4().hex
    completed = ev("p", "s", "COMPLETED", T0 + 5, event_id=uuid.uuid4().hex, batch="b2")
    failed = ev("p", "s", "FAILED", T0, event_id=run, error="boom")
    engine.observe([completed, failed])  # as Pub/Sub may hand them over
    assert [(a["rule"], a["status"]) for a in alerts(engine)] == [("failed", "resolved")]


def test_the_tick_forgets_old_ended_runs_but_not_a_stuck_one(make):
    clock = Clock()
    engine = make({"rules": {"stuck": {"limit_seconds": 60}}}, clock)
    old = T0 - 8 * 24 * 3600
    engine.observe([ev("p", "s", "COMPLETED", old + 5, started=old, batch="old"),
                    ev("p", "s", "STARTED", old, batch="hung")])
    engine.tick()
    runs = engine.store.connect().execute("SELECT correlation_id FROM runs").fetchall()
    assert [r[0] for r in runs] == ["hung"]
    assert [a["rule"] for a in alerts(engine)] == ["stuck"]
