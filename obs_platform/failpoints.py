"""Failpoints: named places where a crash test can make the platform pause, so that a kill lands exactly there.

    OBS_FAILPOINTS="before-ack=4"    # pause 4 s after each Hudi commit, before its messages are acked

Off unless the variable is set (read on first use, not at import). Each pause is logged with its context, so a
test can see that the process is inside the window before it kills it. Production never sets it.
"""

from __future__ import annotations

import logging
import os
import time
from functools import lru_cache

log = logging.getLogger(__name__)

KNOWN = ("before-ack",)


@lru_cache(maxsize=1)
def _points() -> dict[str, float]:
    points: dict[str, float] = {}
    for item in filter(None, (p.strip() for p in os.environ.get("OBS_FAILPOINTS", "").split(","))):
        name, _, seconds = item.partition("=")
        if name not in KNOWN:
            raise ValueError(f"OBS_FAILPOINTS: unknown failpoint {name!r}; known: {', '.join(KNOWN)}")
        points[name] = float(seconds or 1.0)
    return points


def pause(name: str, **context) -> None:
    seconds = _points().get(name)
    if seconds:
        log.warning("failpoint %s: pausing %.1f s %s", name, seconds, context)
        time.sleep(seconds)
