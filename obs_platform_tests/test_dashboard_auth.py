"""The dashboard with the BFF's auth on (OBS_BFF_TOKEN), in real headless Chromium over a real BFF and table.

The locked door still opens for its owner: pages render (the dashboard's server sends the token), the live
stream follows new commits through the dashboard's same-origin /bff proxy (the browser holds only an HttpOnly
cookie), and the token is in no page, no URL, no cookie and no access log. Without the cookie the proxy
refuses; without the token the BFF refuses.
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
from urllib.request import Request, urlopen

import pytest

from obs_platform.bus.client import ensure_topic_and_subscription
from obs_platform.sdk import EventEmitter
from obs_platform.settings import Settings
from obs_platform_tests.test_dashboard_browser import (
    DRIVER,
    FRONTEND,
    browser,
    commit,
    dashboard_stack,
    emit,
    ids,
)

pytestmark = [pytest.mark.browser, pytest.mark.spark, pytest.mark.pubsub]

TOKEN = "owner-secret-7f3a9c"


@pytest.fixture(scope="module")
def authed(tmp_path_factory, emulator, spark):
    """One commit (a1 RUNNING, b2 FAILED), a BFF and a dashboard both run with OBS_BFF_TOKEN, logs to files."""
    home = tmp_path_factory.mktemp("auth")
    host, port = emulator.split(":")
    settings = Settings(home=home, bind_host=host, pubsub_port=int(port), topic="auth-events",
                        subscription="auth-events-hudi", ack_deadline_seconds=10)
    ensure_topic_and_subscription(settings)
    emitter = EventEmitter.from_settings(settings)
    emit(emitter, "a1", "orders", "extract", "b1", "RUNNING", 0, 1, 10, 5)
    emit(emitter, "b2", "orders", "load", "b1", "FAILED", 2, 3, 10, None, "Disk full on /data")
    commit(spark, settings, emitter)
    logs = {"bff": home / "bff.log", "dashboard": home / "dashboard.log"}
    with dashboard_stack(settings, log_dir=home, OBS_BFF_TOKEN=TOKEN) as (dash, bff):
        yield {"dash": dash, "bff": bff, "settings": settings, "emitter": emitter, "logs": logs}


def get(url: str, cookie: str | None = None) -> tuple[int, dict, str]:
    headers = {"Cookie": cookie} if cookie else {}
    try:
        with urlopen(Request(url, headers=headers), timeout=30) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def test_pages_render_and_the_token_stays_on_the_server(authed):
    seen = browser("view", url=f"{authed['dash']}/")
    assert ids(seen["rows"]) == ["b2", "a1"] and {"events", "failures"} <= set(seen["charts"])
    status, headers, html = get(f"{authed['dash']}/")
    assert status == 200 and TOKEN not in html and TOKEN not in seen["qwikJson"]
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/bff" in cookie and TOKEN not in cookie


def test_the_proxy_needs_the_page_cookie_and_forwards_only_what_the_browser_reads(authed):
    dash = authed["dash"]
    assert get(f"{dash}/bff/api/events")[0] == 401  # no page loaded, no cookie
    assert get(f"{dash}/bff/api/events", cookie="obs_bff=9999999999.forged")[0] == 401
    cookie = get(f"{dash}/")[1]["Set-Cookie"].split(";", 1)[0]
    status, _, body = get(f"{dash}/bff/api/events?limit=5", cookie=cookie)
    assert status == 200 and [e["eventId"] for e in json.loads(body)["events"]] == ["b2", "a1"]
    assert get(f"{dash}/bff/api/dead-letters", cookie=cookie)[0] == 404  # raw payloads stay server-side
    assert get(f"{authed['bff']}/api/events")[0] == 401  # the BFF itself still wants the token


def test_the_live_stream_follows_a_new_commit_through_the_proxy(authed, spark):
    pages = [{"url": f"{authed['dash']}/", "state": "live"}]
    driver = subprocess.Popen(["node", str(DRIVER), "live", json.dumps({"pages": pages, "eventId": "c3"})],
                              cwd=FRONTEND, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(driver.stdout.readline() or "{}")
        assert ready.get("ready"), driver.stderr.read()[-3000:]
        emit(authed["emitter"], "c3", "orders", "publish", "b1", "RUNNING", 5, 6, 10, 1)
        instant = commit(spark, authed["settings"], authed["emitter"])
        out, err = driver.communicate(timeout=120)
    finally:
        driver.kill()
    assert driver.returncode == 0, err[-3000:]
    [seen] = json.loads(out.strip().splitlines()[-1])["result"]
    assert seen["sameDocument"] and ids(seen["rows"])[0] == "c3" and seen["liveState"] == "live"
    assert seen["latestCommit"] == instant
    for name, log in authed["logs"].items():
        assert TOKEN not in log.read_text(errors="replace"), f"the token reached the {name}'s log"
    assert "/bff/api/stream" not in authed["logs"]["bff"].read_text() and "GET /api/stream" in \
        authed["logs"]["bff"].read_text()
