"""The three webhook shapes, built once per (transition, receiver) and stored in the outbox.

- ``json``: the alert as JSON (``AlertNotification``): ``event`` (open | acknowledge | resolve), ``dedupKey``
  (one per transition: a receiver drops a body whose key it has seen), the alert and its links.
- ``slack``: a Slack incoming-webhook message (``text`` plus ``blocks``).
- ``pagerduty``: a PagerDuty Events API v2 event: ``routing_key``, ``event_action`` trigger | acknowledge |
  resolve, ``dedup_key`` (one per alert, so PagerDuty folds a repeated trigger into the same incident and
  the resolve closes it), and ``payload`` (summary, source, severity, component, group, class,
  custom_details) on trigger.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from obs_platform.alerts.config import Receiver

ACTIONS = {"open": "trigger", "acknowledge": "acknowledge", "resolve": "resolve"}
PD_SEVERITY = {"info": "info", "warning": "warning", "critical": "critical"}


def iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def links(alert: dict[str, Any]) -> dict[str, str]:
    """Where to look: the BFF's at-failure and journey routes and the dashboard's pages for them."""
    out: dict[str, str] = {}
    if alert.get("event_id"):
        out["atFailure"] = f"/api/events/{alert['event_id']}/at-failure"
        out["eventPage"] = f"/events/{alert['event_id']}"
    if alert.get("correlation_id"):
        out["journey"] = f"/api/correlations/{alert['correlation_id']}"
        out["journeyPage"] = f"/journeys/{alert['correlation_id']}"
    return out


def alert_json(alert: dict[str, Any]) -> dict[str, Any]:
    """The alert as the API and the generic webhook show it."""
    details = alert["details"]
    if isinstance(details, str):
        details = json.loads(details)
    return {
        "id": alert["id"], "rule": alert["rule"], "pipeline": alert["pipeline"], "stage": alert["stage"],
        "correlationId": alert["correlation_id"], "eventId": alert["event_id"], "severity": alert["severity"],
        "status": alert["status"], "summary": alert["summary"], "signature": alert["signature"],
        "count": alert["count"], "firstSeen": iso(alert["first_seen"]), "lastSeen": iso(alert["last_seen"]),
        "openedAt": iso(alert["opened_at"]), "acknowledgedBy": alert["acknowledged_by"],
        "acknowledgedAt": iso(alert["acknowledged_at"]), "resolvedAt": iso(alert["resolved_at"]),
        "resolvedBy": alert["resolved_by"], "resolution": alert["resolution"], "details": details,
        "links": links(alert),
    }


def dedup_key(alert_id: int, kind: str, transition_id: int) -> str:
    return f"obs-alert-{alert_id}-{kind}-{transition_id}"


def build(receiver: Receiver, alert: dict[str, Any], kind: str, transition_id: int, by: str | None) -> tuple[str, str]:
    """(dedup key, body) for one receiver."""
    key = dedup_key(alert["id"], kind, transition_id)
    body = alert_json(alert)
    if receiver.kind == "pagerduty":
        pd_key = f"obs-alert-{alert['id']}"
        event: dict[str, Any] = {"routing_key": receiver.routing_key, "event_action": ACTIONS[kind],
                                 "dedup_key": pd_key}
        if kind == "open":
            event["payload"] = {
                "summary": alert["summary"][:1024], "source": alert["pipeline"],
                "severity": PD_SEVERITY[alert["severity"]], "component": alert["stage"] or alert["pipeline"],
                "group": alert["pipeline"], "class": alert["rule"], "timestamp": iso(alert["first_seen"]),
                "custom_details": {"count": alert["count"], "correlationId": alert["correlation_id"],
                                   "eventId": alert["event_id"], "signature": alert["signature"],
                                   "details": body["details"], "links": body["links"]},
            }
            event["links"] = [{"href": href, "text": name} for name, href in body["links"].items()]
        return pd_key + f"-{kind}-{transition_id}", json.dumps(event)
    if receiver.kind == "slack":
        verb = {"open": ":rotating_light: OPEN", "acknowledge": ":eyes: ACKNOWLEDGED",
                "resolve": ":white_check_mark: RESOLVED"}[kind]
        where = alert["pipeline"] + (f" / {alert['stage']}" if alert["stage"] else "")
        text = f"{verb} [{alert['severity']}] {alert['rule']} — {where}: {alert['summary']}"
        if alert["count"] > 1:
            text += f" (×{alert['count']})"
        fields = [f"*alert* #{alert['id']}", f"*first seen* {iso(alert['first_seen'])}",
                  f"*last seen* {iso(alert['last_seen'])}"] + [f"*{n}* {h}" for n, h in body["links"].items()]
        message = {"text": text, "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f[:300]} for f in fields[:10]]},
        ], "metadata": {"event_type": "obs_alert", "event_payload": {"dedupKey": key, "alertId": alert["id"]}}}
        return key, json.dumps(message)
    return key, json.dumps({"event": kind, "dedupKey": key, "by": by, "alert": body})
