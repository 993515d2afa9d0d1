"""Alerts: list (filters, paging), one alert with its transitions and delivery log, acknowledge, resolve.

The state is the alerter's SQLite file (``<home>/alerts/alerts.db``, ``obs_platform.alerts``); the alerter runs
in this process unless ``OBS_BFF_ALERTS_ENGINE=false``. Acknowledge and resolve write the transition and the
notifications it owes in one transaction; the delivery workers send them.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field

from bff.deps import Authenticated
from bff.models import ErrorBody
from bff.routers.params import ERRORS, NOT_FOUND, Limit, Offset
from obs_platform.alerts import payloads
from obs_platform.alerts.engine import acknowledge_alert, resolve_alert
from obs_platform.errors import NotFound

router = APIRouter(prefix="/api/alerts", tags=["alerts"], dependencies=Authenticated)

AlertStatus = Literal["open", "acknowledged", "resolved"]
Rule = Literal["failed", "retry_loop", "stuck", "rows", "silence", "volume"]


class AlertLinks(BaseModel):
    atFailure: str | None = Field(default=None, description="BFF route: the pipeline at the moment of the event.")
    eventPage: str | None = Field(default=None, description="Dashboard page of the event (state at failure).")
    journey: str | None = Field(default=None, description="BFF route: the batch's journey across stages.")
    journeyPage: str | None = Field(default=None, description="Dashboard page of the batch's journey.")


class Alert(BaseModel):
    id: int
    rule: Rule
    pipeline: str
    stage: str | None
    correlationId: str | None = Field(description="The batch (the newest one that grew the alert).")
    eventId: str | None = Field(description="The stage run (the newest one that grew the alert).")
    severity: Literal["info", "warning", "critical"]
    status: AlertStatus
    summary: str
    signature: str | None = Field(description="failed: the error message with ids, hex and numbers replaced.")
    count: int = Field(description="Occurrences grouped into this alert (failed: distinct stage runs).")
    firstSeen: datetime
    lastSeen: datetime
    openedAt: datetime
    acknowledgedBy: str | None
    acknowledgedAt: datetime | None
    resolvedAt: datetime | None
    resolvedBy: str | None = Field(description="'auto' when the condition cleared, else who resolved it.")
    resolution: str | None
    details: dict[str, Any]
    links: AlertLinks


class AlertList(BaseModel):
    alerts: list[Alert]
    total: int = Field(description="Alerts matching the filters, before paging.")
    byStatus: dict[str, int] = Field(description="Alerts matching the filters other than status, per status.")


class StreamAlertMessage(BaseModel):
    """The data of one `alert` event on /api/stream (no SSE id: not resumable; after a reconnect read
    GET /api/alerts again): an alert opened, grew, was acknowledged or was resolved."""

    change: Literal["opened", "grown", "acknowledged", "resolved"] = Field(
        description="What happened: opened, grown (count or last occurrence moved), acknowledged, resolved.")
    alert: Alert = Field(description="The alert after the change, as GET /api/alerts shows it.")


class AlertTransition(BaseModel):
    kind: Literal["open", "acknowledge", "resolve"]
    at: datetime
    by: str | None


class AlertDelivery(BaseModel):
    receiver: str
    transition: Literal["open", "acknowledge", "resolve"]
    dedupKey: str
    state: Literal["pending", "delivered", "failed"]
    attempts: int
    lastError: str | None
    deliveredAt: datetime | None


class AlertDetail(Alert):
    transitions: list[AlertTransition]
    deliveries: list[AlertDelivery]


class Acknowledge(BaseModel):
    by: str = Field(min_length=1, max_length=200, description="Who acknowledges (recorded on the alert).")


class Resolve(BaseModel):
    by: str = Field(default="api", min_length=1, max_length=200, description="Who resolves it.")
    note: str | None = Field(default=None, max_length=2000, description="Why; kept as the resolution.")


CONFLICT = {409: {"model": ErrorBody, "description": "The alert is resolved: it cannot be acknowledged."}}
BAD_BODY = {400: {"model": ErrorBody, "description": "The body is not JSON."}}
AlertId = Annotated[int, Path(alias="alertId", ge=1, le=2**62)]


def _handle(request: Request):
    return request.app.state.alerts


def _alert(db, alert_id: int) -> dict:
    row = db.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)).fetchone()
    if row is None:
        raise NotFound(f"Alert {alert_id} not found.")
    return dict(row)


def _detail(db, alert_id: int) -> AlertDetail:
    body = payloads.alert_json(_alert(db, alert_id))
    transitions = [AlertTransition(kind=r["kind"], at=payloads.iso(r["at"]), by=r["by"]) for r in db.execute(
        "SELECT kind, at, by FROM transitions WHERE alert_id = ? ORDER BY id", (alert_id,))]
    deliveries = [AlertDelivery(receiver=r["receiver"], transition=r["kind"], dedupKey=r["dedup_key"], state=r["state"],
                                attempts=r["attempts"], lastError=r["last_error"],
                                deliveredAt=payloads.iso(r["delivered_at"])) for r in db.execute(
        "SELECT d.*, t.kind FROM deliveries d JOIN transitions t ON t.id = d.transition_id WHERE d.alert_id = ? "
        "ORDER BY d.id", (alert_id,))]
    return AlertDetail(**body, transitions=transitions, deliveries=deliveries)


@router.get("", response_model=AlertList, operation_id="listAlerts", responses=ERRORS)
def list_alerts(request: Request, limit: Limit = 100, offset: Offset = 0,
                status: Annotated[list[AlertStatus] | None, Query(description="Repeatable.")] = None,
                pipeline: Annotated[list[Annotated[str, Query(max_length=200)]] | None,
                                    Query(max_length=50, description="Repeatable; exact names.")] = None,
                rule: Annotated[list[Rule] | None, Query(description="Repeatable.")] = None,
                stage: Annotated[list[Annotated[str, Query(max_length=200)]] | None,
                                 Query(max_length=50, description="Repeatable; exact names.")] = None,
                ) -> AlertList:
    """Alerts, newest first (open and acknowledged ones before resolved ones)."""
    where, args = [], []
    for column, values in (("pipeline", pipeline), ("rule", rule), ("stage", stage)):
        if values:
            where.append(f"{column} IN ({', '.join('?' * len(values))})")
            args.extend(values)
    db = _handle(request).store.connect()
    base = " AND ".join(where) or "1"
    by_status = {s: 0 for s in ("open", "acknowledged", "resolved")}
    by_status.update({r[0]: r[1] for r in db.execute(f"SELECT status, count(*) FROM alerts WHERE {base} "  # noqa: S608
                                                      "GROUP BY status", args)})
    if status:
        where.append(f"status IN ({', '.join('?' * len(status))})")
        args.extend(status)
    clause = " AND ".join(where) or "1"
    total = db.execute(f"SELECT count(*) FROM alerts WHERE {clause}", args).fetchone()[0]  # noqa: S608
    rows = db.execute(f"SELECT * FROM alerts WHERE {clause} ORDER BY status = 'resolved', id DESC "  # noqa: S608
                      "LIMIT ? OFFSET ?", [*args, limit, offset]).fetchall()
    return AlertList(alerts=[payloads.alert_json(dict(r)) for r in rows], total=total, byStatus=by_status)


@router.get("/{alertId}", response_model=AlertDetail, operation_id="getAlert", responses={**ERRORS, **NOT_FOUND})
def get_alert(request: Request, alert_id: AlertId) -> AlertDetail:
    """One alert, its transitions and its delivery log."""
    return _detail(_handle(request).store.connect(), alert_id)


@router.post("/{alertId}/acknowledge", response_model=AlertDetail, operation_id="acknowledgeAlert",
             responses={**ERRORS, **NOT_FOUND, **CONFLICT, **BAD_BODY})
def acknowledge(request: Request, alert_id: AlertId, body: Annotated[Acknowledge, Body()]) -> AlertDetail:
    """open → acknowledged, recording who and when (an acknowledged alert stays as it is)."""
    handle = _handle(request)
    with handle.store.tx() as db:
        alert = _alert(db, alert_id)
        if alert["status"] == "resolved":
            raise HTTPException(status_code=409, detail=f"Alert {alert_id} is resolved; it cannot be acknowledged.")
        acknowledge_alert(db, alert_id, body.by, time.time(), handle.config)
    handle.notify()
    return _detail(handle.store.connect(), alert_id)


@router.post("/{alertId}/resolve", response_model=AlertDetail, operation_id="resolveAlert",
             responses={**ERRORS, **NOT_FOUND, **BAD_BODY})
def resolve(request: Request, alert_id: AlertId, body: Annotated[Resolve | None, Body()] = None) -> AlertDetail:
    """open/acknowledged → resolved by hand (a resolved alert stays as it is)."""
    handle = _handle(request)
    body = body or Resolve()
    with handle.store.tx() as db:
        _alert(db, alert_id)
        resolve_alert(db, alert_id, body.by, body.note or "resolved by hand", time.time(), handle.config)
    handle.notify()
    return _detail(handle.store.connect(), alert_id)
