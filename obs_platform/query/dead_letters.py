"""Dead letters as the API shows them: pending ones, filtered by reason, paged, counted per reason."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from obs_platform.errors import InvalidInput
from obs_platform.lakehouse.dead_letters import DeadLetterStore
from obs_platform.query.base import MAX_PAGE, check_text

PREVIEW_BYTES = 256


@dataclass
class DeadLetterPage:
    letters: list[dict[str, Any]]
    total: int
    by_reason: dict[str, int]


def dead_letter_page(root: str | Path, reason: str | None = None, limit: int = 100, offset: int = 0) -> DeadLetterPage:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput("limit", f"{limit} is outside 1..{MAX_PAGE}")
    if offset < 0:
        raise InvalidInput("offset", f"{offset} is negative")
    check_text(reason, "reason")
    table = DeadLetterStore(root).pending()  # newest first
    by_reason: dict[str, int] = {}
    if table.num_rows:
        for item in pc.value_counts(table["reason"]).to_pylist():
            by_reason[item["values"]] = item["counts"]
    if reason is not None:
        table = table.filter(pc.equal(table["reason"], reason))
    rows = table.slice(offset, limit).to_pylist()
    letters = [{
        "messageId": r["messageId"], "publishTime": r["publishTime"], "receivedAt": r["receivedAt"],
        "reason": r["reason"], "detail": r["detail"], "attributes": dict(r["attributes"] or []),
        "sizeBytes": len(r["data"]), "dataBase64": base64.b64encode(r["data"][:PREVIEW_BYTES]).decode("ascii"),
    } for r in rows]
    return DeadLetterPage(letters=letters, total=table.num_rows, by_reason=dict(sorted(by_reason.items())))
