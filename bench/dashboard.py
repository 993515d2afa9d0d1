#!/usr/bin/env python3
"""bench/dashboard: the dashboard against a plain client-side React SPA, cold loads in headless Chromium.

    .venv/bin/python bench/dashboard.py [--home /tmp/bench-dashboard] [--events 5000] [--runs 5] [--rates 1,4]

1. A table of ``--events`` stage runs written by the real writer (bench/dashboard_table.py; reused when
   ``--home`` holds it), a BFF over it (``python -m bff``), the built dashboard (``frontend/server``) and
   the SPA baseline (``bench/spa``, Vite + React, built here when missing) served gzip-compressed.
2. bench/dashboard_browser.mjs: per CPU throttling rate, one warm-up then ``--runs`` cold loads of each
   page, interleaved (fresh browser context per load): FCP, first click handled (a click on the first
   row every 50 ms from DOMContentLoaded until a MutationObserver sees the details panel filled), JS
   before interaction (gzip -6 and executed bytes), bytes on the wire, total blocking time.

Both pages show the same window: every event matching no filter, newest first (``limit`` = ``--events``).
Writes bench/reports/dashboard-<timestamp>.json and prints a table with the issue's targets.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
FRONTEND = REPO / "frontend"
SPA = REPO / "bench" / "spa"
TARGETS = {"fcp_ms_1x": 200, "first_click_ms_1x": 400, "js_gzip_kb_before_interaction": 45, "spa_over_dashboard_first_click": 2.0}


def _load_table_module():
    spec = importlib.util.spec_from_file_location("dashboard_table", REPO / "bench" / "dashboard_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(cmd: list[str], cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def ensure_builds() -> None:
    if not (FRONTEND / "server" / "entry.node-server.js").exists():
        _run(["npm", "run", "build"], FRONTEND)
    if not (SPA / "node_modules").exists():
        _run(["npm", "ci", "--no-audit", "--no-fund"], SPA)
    if not (SPA / "dist" / "index.html").exists():
        _run(["npm", "run", "build"], SPA)


def start(cmd: list[str], cwd: Path, env: dict, log: Path, ready_url: str) -> subprocess.Popen:
    from obs_platform_tests.conftest import wait_http

    out = open(log, "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **env}, stdout=out, stderr=out)
    wait_http(ready_url, 60)
    return proc


def measure(settings, events: int, runs: int, rates: list[float]) -> dict:
    from obs_platform_tests.conftest import free_port

    bff_port, dash_port, spa_port = free_port(), free_port(), free_port()
    bff = f"http://127.0.0.1:{bff_port}"
    dash = f"http://127.0.0.1:{dash_port}"
    spa = f"http://127.0.0.1:{spa_port}"
    logs = settings.home / "logs"
    logs.mkdir(exist_ok=True)
    procs = []
    try:
        bff_env = {k: v for k, v in os.environ.items() if not k.startswith("OBS_BFF_")}
        procs.append(start([sys.executable, "-m", "bff"], REPO, {
            **bff_env, "OBS_HOME": str(settings.home), "OBS_BFF_PORT": str(bff_port), "OBS_BIND_HOST": "127.0.0.1",
            "OBS_BFF_CORS_ORIGINS": f"{dash},{spa}"}, logs / "bff.log", f"{bff}/api/health"))
        procs.append(start(["node", "server/entry.node-server.js"], FRONTEND, {
            "OBS_BFF_URL": bff, "OBS_DASHBOARD_PORT": str(dash_port), "OBS_DASHBOARD_HOST": "127.0.0.1"},
            logs / "dashboard.log", f"{dash}/"))
        procs.append(start(["node", "serve.mjs", str(spa_port)], SPA, {}, logs / "spa.log", f"{spa}/"))
        effect = "#event-detail[data-event-id]"
        config = {
            "runs": runs, "rates": rates, "viewport": {"width": 1280, "height": 800},
            "targets": [
                {"name": "dashboard", "url": f"{dash}/?limit={events}", "click": "#tl-rows .tl-row .c-time", "effect": effect},
                {"name": "spa", "url": f"{spa}/?bff={bff}&limit={events}", "click": "tr[data-event-id] td.c-time",
                 "effect": effect},
            ],
        }
        started = time.monotonic()
        out = subprocess.run(["node", str(REPO / "bench" / "dashboard_browser.mjs"), json.dumps(config)], cwd=REPO,
                             check=True, capture_output=True, text=True)
        result = json.loads(out.stdout)
        result["browser_seconds"] = round(time.monotonic() - started, 1)
        return result
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)


def summarize(result: dict) -> dict:
    rows = {}
    for name, target in result["targets"].items():
        for rate, data in target["byRate"].items():
            m = data["median"]
            rows[f"{name} @{rate}x"] = {
                "fcp_ms": round(m["fcpMs"]), "first_click_ms": round(m["firstClickMs"]),
                "click_seen_ms": round(m["firstClickSeenMs"]) if m["firstClickSeenMs"] is not None else None,
                "ttfb_ms": round(m["ttfbMs"]), "server_bff_ms": m["serverBffMs"],
                "tbt_ms": round(m["tbtMs"]), "js_gzip_kb": round(m["jsGzipBytes"] / 1024, 1),
                "js_executed_kb": round(m["jsExecutedBytes"] / 1024, 1),
                "wire_kb_at_click": round(m["wireBytesAtClick"] / 1024, 1),
                "wire_kb_settled": round(m["wireBytesSettled"] / 1024, 1),
                "qwik_json_chars": m["qwikJsonChars"], "dom_nodes": m["domNodes"],
            }
    verdict = {}
    d1, s1 = rows.get("dashboard @1x"), rows.get("spa @1x")
    if d1:
        verdict["fcp_le_200ms_1x"] = d1["fcp_ms"] <= TARGETS["fcp_ms_1x"]
        verdict["first_click_le_400ms_1x"] = d1["first_click_ms"] <= TARGETS["first_click_ms_1x"]
        verdict["js_le_45kb_gzip_before_interaction"] = d1["js_gzip_kb"] <= TARGETS["js_gzip_kb_before_interaction"]
    ratios = {}
    for rate in result["rates"]:
        d, s = rows.get(f"dashboard @{rate}x"), rows.get(f"spa @{rate}x")
        if d and s:
            ratios[f"spa_over_dashboard_first_click_{rate}x"] = round(s["first_click_ms"] / d["first_click_ms"], 2)
    if d1 and s1:
        verdict["first_click_2x_faster_than_spa_1x"] = ratios["spa_over_dashboard_first_click_1x"] >= 2
    return {"rows": rows, "ratios": ratios, "targets_met": verdict}


def print_table(summary: dict) -> None:
    cols = ["fcp_ms", "first_click_ms", "click_seen_ms", "ttfb_ms", "server_bff_ms", "tbt_ms", "js_gzip_kb", "js_executed_kb", "wire_kb_at_click",
            "wire_kb_settled", "dom_nodes"]
    print(f"\n{'page':<16}" + "".join(f"{c:>16}" for c in cols))
    for name, row in summary["rows"].items():
        print(f"{name:<16}" + "".join(f"{row[c]!s:>16}" for c in cols))
    print(f"\nratios: {summary['ratios']}")
    print(f"targets met: {summary['targets_met']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path("/tmp/bench-dashboard"))
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rates", default="1,4")
    args = parser.parse_args()
    rates = [float(r) if "." in r else int(r) for r in args.rates.split(",")]

    settings = _load_table_module().ensure_table(args.home, args.events)
    ensure_builds()
    result = measure(settings, args.events, args.runs, rates)
    summary = summarize(result)
    report = {
        "bench": "dashboard", "when": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "args": {k: str(v) for k, v in vars(args).items()},
        "method": "median of cold loads (fresh context each, its renderer started on about:blank 300 ms before the "
                  "measured navigation), interleaved dashboard/spa, after one warm-up per rate; "
                  "first click = performance.now() when a MutationObserver saw the details panel filled, clicks on "
                  "the first row every 50 ms from DOMContentLoaded; JS = scripts V8 compiled before that moment",
        **summary, "raw": result,
    }
    out = REPO / "bench" / "reports" / f"dashboard-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print_table(summary)
    print(f"\nwrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
