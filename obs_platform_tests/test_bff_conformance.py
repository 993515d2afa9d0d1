"""The BFF's conformance suite: every query backend, over HTTP, against one table written by the real ingestion.

Parametrized by backend name (``BACKENDS``); a backend joins by adding its name here and, if it needs a
server, the environment its BFF needs in ``BACKEND_ENV`` (static) or ``backend_env`` (a server started by a
fixture). The answers asserted are the user-visible ones, with the expected values written below (see the
``table`` fixture for the table's history); every backend must give exactly these.

``thrift``: the session's ``sql_endpoint`` (PostgreSQL + Hive metastore + Spark Thrift Server on free ports,
``sql_fixtures.py``) is started on first use; each table is registered with Hudi's Hive sync once its
fixture has made its commits (``table``: after its three; ``live``: after its first). Commits made later
(the live tests') are not re-synced: Spark reads a synced Hudi table through Hudi's timeline, so new commits
(and partitions) are visible without a sync (shown in ``test_sql_endpoint.py``); a sync per commit would
cost a JVM start (~20 s) each.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
import pytest

from obs_platform.bus.client import ensure_topic_and_subscription, publisher, topic_path
from obs_platform.sdk import EventEmitter
from obs_platform.settings import REPO_ROOT, Settings, TableType
from obs_platform_tests.conftest import drain_into_table, free_port, wait_http

pytestmark = [pytest.mark.spark, pytest.mark.pubsub]

BACKENDS = ["embedded", "thrift"]
BACKEND_ENV: dict[str, dict[str, str]] = {"embedded": {}, "thrift": {}}

T0 = datetime(2026, 11, 26, 8, 0, 0, tzinfo=UTC)
INJECTIONS = ["' OR 1=1 --", "; DROP TABLE x", "../../etc/passwd", "x" * 5000, "ünïcødé ☃ 漢字 \u202e",
              "%00", "${jndi:ldap://x}", "\\' UNION SELECT * FROM pipeline_events --"]


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def iso(minutes: float) -> str:
    return at(minutes).isoformat().replace("+00:00", "Z")


def emit(emitter, event_id, pipeline, stage, correlation, status, started, updated, source=None, processed=None,
         error=None):
    emitter.emit({"eventId": event_id, "correlationId": correlation, "pipelineName": pipeline, "stageName": stage,
                  "status": status, "eventTimestamp": at(started), "lastUpdatedAt": at(updated),
                  "sourceRecordCount": source, "processedRecordCount": processed, "errorMessage": error})


def commit(spark, settings, emitter) -> str:
    emitter.flush()
    reports = drain_into_table(spark, settings)
    instants = [r.instant for r in reports if r.instant]
    assert instants, "the writer made no commit"
    return instants[-1]


def module_settings(tmp_path_factory, emulator, name: str, table: str = "pipeline_events",
                    table_type: TableType = TableType.MERGE_ON_READ) -> Settings:
    host, port = emulator.split(":")
    settings = Settings(home=tmp_path_factory.mktemp(name), bind_host=host, pubsub_port=int(port),
                        topic=f"{name}-events", subscription=f"{name}-events-hudi", ack_deadline_seconds=10,
                        table=table, table_type=table_type)
    ensure_topic_and_subscription(settings)
    return settings


@pytest.fixture(scope="module", params=[TableType.MERGE_ON_READ, TableType.COPY_ON_WRITE], ids=["mor", "cow"])
def table(request, tmp_path_factory, emulator, spark):
    """Three commits through Pub/Sub and the real micro-batch writer, on each table type (T0 = 2026-11-26 08:00 UTC; times below
    are minutes after T0 as eventTimestamp -> lastUpdatedAt).

    c1: ord-extract-1  orders/extract    b1 COMPLETED  0 -> 1    source 100 processed 100
        ord-validate-1 orders/validate   b1 RUNNING    2 -> 3    source 80  processed 40
        click-load-2   clickstream/load  b2 COMPLETED  5 -> 6    source 10  processed 10
        ord-extract-3  orders/extract    b3 RUNNING   65 -> 66   source 50  processed 20
        + 2 undecodable messages (dead letters: bad_header, unknown_schema)
    c2: ord-validate-1 FAILED (10, processed 70, "Disk full on /data"); ord-extract-3 COMPLETED (70, processed 50)
    c3: ord-validate-1 COMPLETED (15, processed 75); ord-load-1 orders/load b1 COMPLETED 16 -> 18 source 150
        processed 150; click-extract-4 clickstream/extract b4 FAILED 30 -> 31 "Schema mismatch in column amount";
        a late, older state of ord-extract-3 (RUNNING at 68, processed 30) that must lose to c2's COMPLETED (70)
        (merge-on-read appends it to a log file as it came; every read must merge it away)

    Expected now (newest lastUpdatedAt first): ord-extract-3 (c2), click-extract-4 (c3, FAILED), ord-load-1 (c3),
    ord-validate-1 (c3, COMPLETED), click-load-2 (c1), ord-extract-1 (c1).
    """
    kind = request.param
    suffix = "" if kind is TableType.MERGE_ON_READ else "_cow"  # one metastore: one name per table
    settings = module_settings(tmp_path_factory, emulator, f"conf{suffix.replace('_', '-')}",
                               table=f"pipeline_events{suffix}", table_type=kind)
    emitter = EventEmitter.from_settings(settings)
    emit(emitter, "ord-extract-1", "orders", "extract", "b1", "COMPLETED", 0, 1, 100, 100)
    emit(emitter, "ord-validate-1", "orders", "validate", "b1", "RUNNING", 2, 3, 80, 40)
    emit(emitter, "click-load-2", "clickstream", "load", "b2", "COMPLETED", 5, 6, 10, 10)
    emit(emitter, "ord-extract-3", "orders", "extract", "b3", "RUNNING", 65, 66, 50, 20)
    raw = publisher(settings)
    topic = topic_path(settings)
    raw.publish(topic, b"this is not avro", source="conformance").result(30)
    raw.publish(topic, b"\xc3\x01" + b"\x00" * 8 + b"\x02", source="conformance").result(30)
    c1 = commit(spark, settings, emitter)
    emit(emitter, "ord-validate-1", "orders", "validate", "b1", "FAILED", 2, 10, 80, 70, "Disk full on /data")
    emit(emitter, "ord-extract-3", "orders", "extract", "b3", "COMPLETED", 65, 70, 50, 50)
    c2 = commit(spark, settings, emitter)
    emit(emitter, "ord-validate-1", "orders", "validate", "b1", "COMPLETED", 2, 15, 80, 75)
    emit(emitter, "ord-load-1", "orders", "load", "b1", "COMPLETED", 16, 18, 150, 150)
    emit(emitter, "click-extract-4", "clickstream", "extract", "b4", "FAILED", 30, 31, 20, None,
         "Schema mismatch in column amount")
    emit(emitter, "ord-extract-3", "orders", "extract", "b3", "RUNNING", 65, 68, 50, 30)  # late and older: loses
    c3 = commit(spark, settings, emitter)
    return settings, c1, c2, c3


def backend_env(request, backend: str, settings: Settings) -> dict[str, str]:
    """The environment a BFF of ``backend`` needs for the table in ``settings`` (starting its server if any)."""
    if backend != "thrift":
        return {}
    endpoint = request.getfixturevalue("sql_endpoint")
    synced = endpoint.__dict__.setdefault("synced", set())
    if settings.table_uri not in synced:
        endpoint.sync(settings)
        endpoint.warm(settings)
        synced.add(settings.table_uri)
    return endpoint.env


def start_bff(settings: Settings, backend: str, **env: str) -> tuple[str, subprocess.Popen]:
    port = free_port()
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("OBS_BFF_")}
    full_env = {**inherited, "OBS_HOME": str(settings.home), "OBS_BFF_PORT": str(port), "OBS_BIND_HOST": "127.0.0.1",
                "OBS_TABLE": settings.table, "OBS_DATABASE": settings.database, "OBS_BFF_BACKEND": backend,
                "OBS_TABLE_TYPE": settings.table_type.value,
                **BACKEND_ENV[backend], **env}
    proc = subprocess.Popen([sys.executable, "-m", "bff"], cwd=REPO_ROOT, env=full_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/api/health", 30)
    return url, proc


@pytest.fixture(scope="module", params=BACKENDS)
def bff(request, table):
    url, proc = start_bff(table[0], request.param, **backend_env(request, request.param, table[0]))
    with httpx.Client(base_url=url, timeout=30) as client:
        client.base_url_str = url
        yield client
    proc.terminate()
    proc.wait(10)


def ids(body) -> list[str]:
    return [e["eventId"] for e in body["events"]]


# --- full load, filters, incremental ----------------------------------------------------------------------
def test_full_load_is_the_current_state_newest_first(bff, table):
    _, c1, c2, c3 = table
    body = bff.get("/api/events").json()
    assert body["latestCommit"] == c3 and body["asOf"] == c3 and body["total"] == 6
    assert ids(body) == ["ord-extract-3", "click-extract-4", "ord-load-1", "ord-validate-1", "click-load-2",
                         "ord-extract-1"]
    by_id = {e["eventId"]: e for e in body["events"]}
    assert by_id["ord-validate-1"]["status"] == "COMPLETED" and by_id["ord-validate-1"]["commitTime"] == c3
    assert by_id["ord-validate-1"]["processedRecordCount"] == 75 and by_id["ord-validate-1"]["errorMessage"] is None
    assert by_id["ord-extract-3"]["commitTime"] == c2 and by_id["ord-extract-1"]["commitTime"] == c1


def test_filters_compose(bff):
    assert ids(bff.get("/api/events", params={"status": "FAILED"}).json()) == ["click-extract-4"]
    assert ids(bff.get("/api/events", params=[("pipeline", "orders"), ("stage", "extract")]).json()) == [
        "ord-extract-3", "ord-extract-1"]
    assert ids(bff.get("/api/events", params={"correlationId": "b1"}).json()) == [
        "ord-load-1", "ord-validate-1", "ord-extract-1"]
    # from inclusive, to exclusive, on eventTimestamp
    window = bff.get("/api/events", params={"from": iso(2), "to": iso(16)}).json()
    assert ids(window) == ["ord-validate-1", "click-load-2"] and window["total"] == 2
    assert ids(bff.get("/api/events", params={"from": "2026-11-26T09:05:00+01:00"}).json()) == [  # 08:05 UTC
        "ord-extract-3", "click-extract-4", "ord-load-1", "click-load-2"]
    # q: case-insensitive literal substring of errorMessage
    assert ids(bff.get("/api/events", params={"q": "MISMATCH in col"}).json()) == ["click-extract-4"]
    assert bff.get("/api/events", params={"q": "disk full"}).json()["total"] == 0  # validate-1 recovered
    page = bff.get("/api/events", params={"limit": 2, "offset": 1}).json()
    assert ids(page) == ["click-extract-4", "ord-load-1"] and page["total"] == 6


def test_incremental_is_what_changed_after_the_cursor(bff, table):
    _, c1, c2, c3 = table
    body = bff.get("/api/events/incremental", params={"since": c2}).json()
    assert ids(body) == ["click-extract-4", "ord-load-1", "ord-validate-1"] and body["latestCommit"] == c3
    assert ids(bff.get("/api/events/incremental", params={"since": c1, "pipeline": "orders"}).json()) == [
        "ord-extract-3", "ord-load-1", "ord-validate-1"]
    assert bff.get("/api/events/incremental", params={"since": c3}).json()["total"] == 0


# --- time travel --------------------------------------------------------------------------------------------
def test_time_travel_shows_the_older_status(bff, table):
    _, c1, c2, c3 = table
    at_c1 = bff.get("/api/events", params={"as_of": c1}).json()
    assert at_c1["asOf"] == c1 and at_c1["latestCommit"] == c3 and at_c1["total"] == 4
    assert ids(at_c1) == ["ord-extract-3", "click-load-2", "ord-validate-1", "ord-extract-1"]
    assert {e["eventId"]: e["status"] for e in at_c1["events"]}["ord-validate-1"] == "RUNNING"
    at_c2 = bff.get("/api/events", params={"as_of": c2, "pipeline": "orders", "stage": "validate"}).json()
    assert [(e["status"], e["processedRecordCount"], e["errorMessage"], e["commitTime"]) for e in at_c2["events"]] == [
        ("FAILED", 70, "Disk full on /data", c2)]
    assert ids(bff.get("/api/events", params={"as_of": c2, "q": "DISK FULL"}).json()) == ["ord-validate-1"]
    # a 14-digit instant names the newest commit at or before it; so does a time (by completion)
    commits = {c["instant"]: c for c in bff.get("/api/commits").json()["commits"]}
    assert bff.get("/api/events", params={"as_of": c3[:14]}).json()["asOf"] in (c2, c3)
    completed_c2 = commits[c2]["completedAt"]
    assert bff.get("/api/events", params={"as_of": completed_c2}).json()["asOf"] == c2


def test_time_travel_beyond_the_horizon_is_refused_naming_it(bff, table):
    _, c1, _, _ = table
    for value in ("20200101000000000", "2020-01-01T00:00:00Z"):
        response = bff.get("/api/events", params={"as_of": value})
        assert response.status_code == 422
        assert response.json()["parameter"] == "as_of"
        assert f"oldest retained commit {c1}" in response.json()["detail"]


# --- the moment of a failure ---------------------------------------------------------------------------------
def test_at_failure_shows_the_pipeline_at_the_failure_and_the_diff_from_healthy(bff, table):
    _, c1, c2, c3 = table
    body = bff.get("/api/events/ord-validate-1/at-failure").json()
    assert body["failureCommit"] == c2 and body["healthyCommit"] == c1 and body["pipelineName"] == "orders"
    assert body["event"]["status"] == "FAILED" and body["event"]["errorMessage"] == "Disk full on /data"
    assert body["failedInPipeline"] == 1
    state = {e["eventId"]: e["status"] for e in body["pipelineState"]["events"]}
    assert state == {"ord-extract-3": "COMPLETED", "ord-validate-1": "FAILED", "ord-extract-1": "COMPLETED"}
    changes = {c["eventId"]: c for c in body["changes"]}
    assert body["changesTotal"] == 2 and set(changes) == {"ord-validate-1", "ord-extract-3"}
    assert changes["ord-validate-1"]["change"] == "changed"
    assert (changes["ord-validate-1"]["before"]["status"], changes["ord-validate-1"]["after"]["status"]) == (
        "RUNNING", "FAILED")
    assert (changes["ord-extract-3"]["before"]["status"], changes["ord-extract-3"]["after"]["status"]) == (
        "RUNNING", "COMPLETED")


def test_at_failure_of_a_new_row_shows_it_added(bff, table):
    _, _, c2, c3 = table
    body = bff.get("/api/events/click-extract-4/at-failure").json()
    assert (body["failureCommit"], body["healthyCommit"]) == (c3, c2)
    assert {e["eventId"] for e in body["pipelineState"]["events"]} == {"click-extract-4", "click-load-2"}
    assert [(c["eventId"], c["change"], c["before"]) for c in body["changes"]] == [("click-extract-4", "added", None)]


def test_at_failure_errors_name_the_event(bff):
    missing = bff.get("/api/events/no-such-event/at-failure")
    assert missing.status_code == 404 and "no-such-event" in missing.json()["detail"]
    never = bff.get("/api/events/click-load-2/at-failure")
    assert never.status_code == 409 and "click-load-2" in never.json()["detail"]


# --- journeys, commits, stats, dead letters, maintenance -----------------------------------------------------
def test_journey_orders_stages_and_shows_loss_and_gain(bff, table):
    body = bff.get("/api/correlations/b1").json()
    assert body["status"] == "COMPLETED" and body["pipelines"] == ["orders"]
    assert [(s["stageName"], s["status"], s["durationSeconds"]) for s in body["stages"]] == [
        ("extract", "COMPLETED", 60.0), ("validate", "COMPLETED", 780.0), ("load", "COMPLETED", 120.0)]
    assert body["stages"][0]["startedAt"].startswith("2026-11-26T08:00:00")
    assert [(s["fromStage"], s["toStage"], s["previousProcessed"], s["nextCount"], s["delta"], s["ratio"], s["kind"])
            for s in body["steps"]] == [("extract", "validate", 100, 80, -20, 0.8, "loss"),
                                        ("validate", "load", 75, 150, 75, 2.0, "gain")]
    assert bff.get("/api/correlations/b4").json()["status"] == "FAILED"
    missing = bff.get("/api/correlations/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]


def test_commits_are_the_timeline_newest_first(bff, table):
    _, c1, c2, c3 = table
    body = bff.get("/api/commits").json()
    assert body["total"] == 3
    got = [(c["instant"], c["action"], c["rowsInserted"], c["rowsUpdated"]) for c in body["commits"]]
    if table[0].table_type is TableType.MERGE_ON_READ:  # log appends look nothing up: every row counts as update
        assert got == [(c3, "deltacommit", 0, 4), (c2, "deltacommit", 0, 2), (c1, "deltacommit", 4, 0)]
    else:
        assert got == [(c3, "commit", 2, 1), (c2, "commit", 0, 2), (c1, "commit", 4, 0)]
    assert all(c["completedAt"] and c["bytesWritten"] > 0 for c in body["commits"])
    assert [c["instant"] for c in bff.get("/api/commits", params={"limit": 1}).json()["commits"]] == [c3]


def test_stats_per_pipeline_and_bucket(bff):
    body = bff.get("/api/stats", params={"bucket": "1h"}).json()
    assert [(b["pipelineName"], b["bucketStart"][:16], b["events"], b["failures"], b["recordsProcessed"])
            for b in body["buckets"]] == [("clickstream", "2026-11-26T08:00", 2, 1, 10),
                                          ("orders", "2026-11-26T08:00", 3, 0, 325),
                                          ("orders", "2026-11-26T09:00", 1, 0, 50)]
    narrow = bff.get("/api/stats", params={"bucket": "15m", "pipeline": "orders", "from": iso(0), "to": iso(60)}).json()
    assert [(b["bucketStart"][11:16], b["events"], b["recordsProcessed"]) for b in narrow["buckets"]] == [
        ("08:00", 1, 100), ("08:15", 2, 225)]
    assert bff.get("/api/stats", params={"bucket": "2h"}).status_code == 422


def test_dead_letters_are_visible_with_reasons(bff):
    body = bff.get("/api/dead-letters").json()
    assert body["total"] == 2 and body["byReason"] == {"bad_header": 1, "unknown_schema": 1}
    by_reason = {d["reason"]: d for d in body["deadLetters"]}
    assert by_reason["bad_header"]["sizeBytes"] == len(b"this is not avro")
    assert by_reason["bad_header"]["dataBase64"] == "dGhpcyBpcyBub3QgYXZybw=="
    assert by_reason["bad_header"]["attributes"]["source"] == "conformance"
    only = bff.get("/api/dead-letters", params={"reason": "unknown_schema"}).json()
    assert only["total"] == 1 and only["byReason"] == {"bad_header": 1, "unknown_schema": 1}


def test_maintenance_reports_the_horizon(bff, table):
    _, c1, _, c3 = table
    body = bff.get("/api/maintenance").json()
    assert body["latestCommit"] == c3 and body["commitCount"] == 3 and body["oldestRetainedCommit"] == c1
    assert body["lastClean"] is None and body["lastClustering"] is None and body["timeTravelHorizonHours"] == 24


# --- hostile input ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", INJECTIONS)
def test_injection_strings_are_4xx_or_literal_no_match(bff, value):
    as_values = ["pipeline", "stage", "correlationId", "q"]
    for name in as_values:
        response = bff.get("/api/events", params={name: value})
        assert response.status_code in (200, 422), (name, response.status_code)
        if response.status_code == 200:
            assert response.json()["total"] == 0, name
        else:
            assert name in response.text
    for path, name in (("/api/events/incremental", "since"), ("/api/events", "as_of"), ("/api/events", "from"),
                       ("/api/events", "to"), ("/api/stats", "bucket"), ("/api/stats", "from"), ("/api/commits", "limit"),
                       ("/api/events", "limit"), ("/api/stream", "since")):
        response = bff.get(path, params={name: value})
        assert response.status_code == 422, (path, name, response.status_code)
    for path in (f"/api/events/{quote(value, safe='')}/at-failure", f"/api/correlations/{quote(value, safe='')}"):
        response = bff.get(path)
        assert response.status_code in (404, 422), (path, response.status_code)
    for params in ({"reason": value}, {"pipeline": value}):
        response = bff.get("/api/dead-letters" if "reason" in params else "/api/stats", params=params)
        assert response.status_code in (200, 422)
        if response.status_code == 200:
            assert response.json().get("total", 0) == 0 and response.json().get("buckets", []) == []
    assert bff.get("/api/stream", headers={"Last-Event-ID": value.encode("utf-8")}).status_code == 422
    assert bff.get("/api/events").json()["total"] == 6  # nothing changed


def _fuzz(operation, mode, examples: int, run_case) -> None:
    """``examples`` generated cases of ``operation`` in ``mode``, each handed to ``run_case``."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    def run(case):
        run_case(case)

    try:
        run()
    except Unsatisfiable:  # no parameter to make invalid (e.g. /api/health in negative mode)
        assert mode is GenerationMode.NEGATIVE, operation.label


def test_fuzzing_validates_every_response_against_the_openapi_document(bff):
    """Every operation (``/api/stream`` in the next test), valid and invalid input: no 5xx, and every answer is
    one the document declares: a documented status code, its documented content type, a body that matches
    its schema, documented headers. (schemathesis's negative_data_rejection is left out: it counts a string
    parameter sent as ``false`` or ``1e-16`` as invalid, but on the wire that is a valid string; refusal of
    really invalid values, naming the parameter, is test_injection_strings_are_4xx_or_literal_no_match's.)"""
    import schemathesis
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.core.failures import Failure, FailureGroup
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    url = bff.base_url_str
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json").exclude(path="/api/stream")
    conformance = [not_a_server_error, status_code_conformance, content_type_conformance,
                   response_schema_conformance, response_headers_conformance]
    failures: dict[tuple, str] = {}
    calls: dict[str, int] = {}

    def validate(operation, mode):
        def run_case(case):
            calls[operation.label] = calls.get(operation.label, 0) + 1
            try:
                case.call_and_validate(base_url=url, timeout=30, checks=conformance)
            except (Failure, FailureGroup) as exc:
                found = exc.exceptions if isinstance(exc, FailureGroup) else [exc]
                for failure in found:
                    failures.setdefault((operation.label, mode.value, failure.title),
                                        f"{failure.message}\n{case.as_curl_command()}")
        return run_case

    operations = [result.ok() for result in schema.get_all_operations()]
    document = httpx.get(f"{url}/openapi.json").json()
    assert {op.label for op in operations} == {  # every documented operation but the stream
        f"{method.upper()} {path}" for path, methods in document["paths"].items() for method in methods
        if path != "/api/stream"}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(operation, mode, 25, validate(operation, mode))
    assert not failures, "\n\n".join(f"{k}: {v[:1500]}" for k, v in failures.items())
    assert set(calls) == {op.label for op in operations}


def test_fuzzing_the_stream_validates_its_answers_against_the_openapi_document(bff):
    """``/api/stream`` never ends, so schemathesis generates the requests (valid and invalid ``since`` and
    ``Last-Event-ID``) and we read each answer's head: a documented status and content type; a 200 opens with
    an ``event: ready`` whose data matches StreamReady and whose id names where it starts; a 4xx is the
    documented ErrorBody naming the parameter."""
    import jsonschema_rs  # schemathesis's own validator
    import schemathesis
    from schemathesis import GenerationMode

    url = bff.base_url_str
    document = httpx.get(f"{url}/openapi.json").json()
    operation = schemathesis.openapi.from_dict(document)["/api/stream"]["GET"]
    documented = document["paths"]["/api/stream"]["get"]["responses"]

    def component(name: str) -> dict:
        return {**document["components"]["schemas"][name], "components": document["components"]}

    seen: dict[int, int] = {}
    problems: list[str] = []

    def run_case(case):
        # auth is off here; a header value the HTTP client refuses to send (h11) tests the client, not the BFF
        headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
        try:
            answer_cm = httpx.stream("GET", f"{url}/api/stream", params=case.query, headers=headers, timeout=30)
            answer = answer_cm.__enter__()
        except httpx.LocalProtocolError:
            return
        try:
            status = answer.status_code
            seen[status] = seen.get(status, 0) + 1
            content_type = answer.headers.get("content-type", "").split(";")[0]
            if str(status) not in documented:
                problems.append(f"undocumented status {status} for {case.query} {headers}")
                return
            expected = list(documented[str(status)].get("content", {}))
            if content_type not in expected:
                problems.append(f"{status}: content type {content_type!r}, documented {expected}")
                return
            if status == 200:
                head = _first_sse_event(answer.iter_lines())
                data = json.loads(head.get("data", "null"))
                jsonschema_rs.validate(component("StreamReady"), data)
                if head.get("event") != "ready" or head.get("id") != (data["resumedAfter"] or data["latestCommit"]):
                    problems.append(f"first event {head}")
            else:
                body = json.loads(answer.read())
                jsonschema_rs.validate(component("ErrorBody"), body)
                if status == 422 and body["parameter"] not in ("since", "Last-Event-ID"):
                    problems.append(f"422 names {body['parameter']!r}: {body}")
        except (ValueError, KeyError, jsonschema_rs.ValidationError, httpx.HTTPError) as exc:
            problems.append(f"{case.query} {headers}: {exc!r}")
        finally:
            answer_cm.__exit__(None, None, None)

    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        _fuzz(operation, mode, 20, run_case)
    assert not problems, "\n".join(problems)
    assert seen.get(200) and seen.get(422), seen  # both kinds of answer were generated and checked


def _first_sse_event(lines) -> dict[str, str]:
    """The fields of the first event (up to its blank line), heartbeat comments skipped."""
    fields: dict[str, str] = {}
    for line in lines:
        if line.startswith(":"):
            continue
        if not line:
            if fields:
                return fields
            continue
        name, _, value = line.partition(":")
        fields[name] = value.removeprefix(" ")
    return fields


# --- auth and CORS --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_bearer_token_guards_every_route_but_health(request, table, backend):
    url, proc = start_bff(table[0], backend, OBS_BFF_TOKEN="s3cret-token", **backend_env(request, backend, table[0]))
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            assert client.get("/api/health").status_code == 200
            for path in ("/api/events", "/api/commits", "/api/stats", "/api/dead-letters", "/api/maintenance",
                         "/api/correlations/b1", "/api/events/incremental?since=20260101000000000", "/api/stream"):
                denied = client.get(path)
                assert denied.status_code == 401 and denied.headers["www-authenticate"] == "Bearer", path
                assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
            assert client.get("/api/events", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
            # never a secret in a URL (it would sit in access logs and browser history): header only, stream too
            assert client.get("/api/events", params={"token": "s3cret-token"}).status_code == 401
            assert client.get("/api/stream", params={"token": "s3cret-token"}).status_code == 401
            with client.stream("GET", "/api/stream", headers={"Authorization": "Bearer s3cret-token"}) as stream:
                assert stream.status_code == 200
                lines = stream.iter_lines()
                first_event = [next(lines) for _ in range(3)]
                assert "event: ready" in first_event, first_event
    finally:
        proc.terminate()
        proc.wait(10)


def test_cors_allows_only_the_dashboard(bff):
    settings = Settings()
    dashboard = f"http://127.0.0.1:{settings.dashboard_port}"
    ok = bff.options("/api/events", headers={"Origin": dashboard, "Access-Control-Request-Method": "GET"})
    assert ok.headers.get("access-control-allow-origin") == dashboard
    evil = bff.options("/api/events", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in evil.headers


# --- the live stream ------------------------------------------------------------------------------------------
class SseClient:
    """Reads /api/stream in a thread; parsed events land in a queue."""

    def __init__(self, url: str, headers: dict | None = None, params: dict | None = None):
        self.events: queue.Queue = queue.Queue()
        self.response = None
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=120))
        self._thread = threading.Thread(target=self._run, args=(url, headers, params), daemon=True)
        self._thread.start()

    def _run(self, url, headers, params):
        try:
            with self._client.stream("GET", url, headers=headers, params=params) as response:
                self.response = response
                event: dict = {}
                for line in response.iter_lines():
                    if line == "":
                        if event:
                            self.events.put(event)
                        event = {}
                    elif line.startswith(":"):
                        continue  # heartbeat
                    else:
                        key, _, value = line.partition(":")
                        value = value[1:] if value.startswith(" ") else value
                        event[key] = f"{event[key]}\n{value}" if key in event else value
        except Exception:  # closed from the test thread, or the server went away
            pass
        finally:
            self.events.put(None)

    def next(self, timeout: float = 60) -> dict | None:
        return self.events.get(timeout=timeout)

    def commits_until(self, instant: str, timeout: float = 60) -> list[dict]:
        out = []
        while not out or out[-1]["id"] < instant:
            out.extend(self.commits(1, timeout))
        return out

    def commits(self, count: int, timeout: float = 60) -> list[dict]:
        out = []
        while len(out) < count:
            event = self.next(timeout)
            assert event is not None, f"stream ended after {out}"
            if event.get("event") == "commit":
                out.append({"id": event["id"], **json.loads(event["data"])})
        return out

    def close(self) -> None:
        self._client.close()
        self._thread.join(10)


@pytest.fixture(scope="module", params=BACKENDS)
def live(request, tmp_path_factory, emulator, spark):
    """A table of its own, one commit (live-0 RUNNING), and a BFF that polls its timeline every 0.2 s."""
    settings = module_settings(tmp_path_factory, emulator, "live", table="live_events")  # its own name in the metastore
    emitter = EventEmitter.from_settings(settings)
    emit(emitter, "live-0", "orders", "extract", "l0", "RUNNING", 0, 1, 10, 1)
    first = commit(spark, settings, emitter)
    url, proc = start_bff(settings, request.param, OBS_BFF_STREAM_POLL_SECONDS="0.2",
                          **backend_env(request, request.param, settings))
    yield url, settings, emitter, first
    proc.terminate()
    proc.wait(10)


def test_sse_pushes_a_commit_to_a_client_connected_before_it(live, spark):
    url, settings, emitter, first = live
    client = SseClient(f"{url}/api/stream")
    try:
        ready = client.next(30)
        assert ready["event"] == "ready" and json.loads(ready["data"])["latestCommit"] == first
        assert ready["id"] == first  # a reconnect before any commit resumes from here
        emit(emitter, "live-0", "orders", "extract", "l0", "COMPLETED", 0, 5, 10, 10)
        emit(emitter, "live-1", "orders", "load", "l0", "STARTED", 6, 6, 10, None)
        instant = commit(spark, settings, emitter)
        [message] = client.commits(1)
        assert message["id"] == message["commit"] == instant and message["action"] == "deltacommit"  # merge-on-read
        assert sorted((e["eventId"], e["status"], e["commitTime"]) for e in message["events"]) == [
            ("live-0", "COMPLETED", instant), ("live-1", "STARTED", instant)]
    finally:
        client.close()


def test_sse_reconnect_with_last_event_id_misses_nothing_and_repeats_nothing(live, spark):
    url, settings, emitter, first = live
    client = SseClient(f"{url}/api/stream", params={"since": first})
    try:
        assert client.next(30)["event"] == "ready"
        emit(emitter, "live-1", "orders", "load", "l0", "RUNNING", 6, 7, 10, 3)
        last = commit(spark, settings, emitter)
        seen = client.commits_until(last)  # earlier commits replayed from `since`, then this one live
        assert [m["id"] for m in seen] == sorted({m["id"] for m in seen}) and seen[-1]["id"] == last
    finally:
        client.close()
    # two commits land while the client is away
    missed = []
    for n in (2, 3):
        emit(emitter, f"live-{n}", "orders", "publish", "l0", "RUNNING", 10 + n, 10 + n, 5, n)
        missed.append(commit(spark, settings, emitter))
    # EventSource reconnects to the same URL (its stale ?since=) with the header; the header wins
    client = SseClient(f"{url}/api/stream", params={"since": first}, headers={"Last-Event-ID": last})
    try:
        ready = json.loads(client.next(30)["data"])
        assert ready["resumedAfter"] == last
        replayed = client.commits(2)
        assert [m["id"] for m in replayed] == missed
        assert [[e["eventId"] for e in m["events"]] for m in replayed] == [["live-2"], ["live-3"]]
        emit(emitter, "live-4", "orders", "publish", "l0", "RUNNING", 20, 20, 5, 4)
        live_commit = commit(spark, settings, emitter)
        [pushed] = client.commits(1)
        assert pushed["id"] == live_commit and [e["eventId"] for e in pushed["events"]] == ["live-4"]
        with pytest.raises(queue.Empty):  # and nothing twice
            while True:
                event = client.events.get(timeout=1.5)
                assert event is None or event.get("event") != "commit", event
    finally:
        client.close()
    # a cursor past the horizon is told to reload rather than given a partial replay
    client = SseClient(f"{url}/api/stream", params={"since": "20200101000000000"})
    try:
        assert client.next(30)["event"] == "ready"
        reset = client.next(30)
        assert reset["event"] == "reset" and json.loads(reset["data"])["oldestRetainedCommit"] == first
    finally:
        client.close()
