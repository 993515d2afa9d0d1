"""The streaming ingestion's heartbeat: ``<home>/ingestion/heartbeat.json``, rewritten (atomically) by the
micro-batch loop each time it turns (a batch committed, or found nothing to commit). The keep-alive sensor reads it to tell a
stream that is RUNNING in Dagster but frozen or hung (its loop stopped turning) from a healthy one.

A healthy stream turns at least once per ``trigger_seconds`` + ``commit_max_delay_seconds`` (a batch waits that
long for rows when traffic is light) + the batch's write, with or without traffic, so an old ``turned_at``
means no commit can happen, however many messages wait.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Beat:
    pid: int          # the process running the stream (the Spark JVM is its child)
    turned_at: float  # epoch seconds: the micro-batch loop last finished a turn


def heartbeat_path(home: Path) -> Path:
    return Path(home) / "ingestion" / "heartbeat.json"


class Heartbeat:
    """Written by the stream's process; cheap (one small file replace per turn)."""

    def __init__(self, home: Path):
        self.path = heartbeat_path(home)

    def turned(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            tmp.write_text(json.dumps(asdict(Beat(pid=os.getpid(), turned_at=time.time()))))
            os.replace(tmp, self.path)
        except OSError:  # a heartbeat must never fail the stream
            pass


def read_heartbeat(home: Path) -> Beat | None:
    try:
        return Beat(**json.loads(heartbeat_path(home).read_text()))
    except (OSError, ValueError, TypeError):
        return None
