"""What ingestion could not read, with the reason."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from bff.deps import Authenticated, SettingsDep
from bff.models import DeadLetterList
from bff.routers.params import ERRORS, Limit, Offset
from obs_platform.query.dead_letters import dead_letter_page

router = APIRouter(prefix="/api/dead-letters", tags=["dead-letters"], dependencies=Authenticated)


@router.get("", response_model=DeadLetterList, operation_id="listDeadLetters", responses=ERRORS)
def dead_letters(settings: SettingsDep, limit: Limit = 100, offset: Offset = 0,
                 reason: Annotated[str | None, Query(max_length=200, description="Exact reason, e.g. unknown_schema.")] = None,
                 ) -> DeadLetterList:
    """Pending (not replayed) dead letters, newest first, with a preview of their bytes."""
    page = dead_letter_page(settings.dead_letter_uri, reason=reason, limit=limit, offset=offset)
    return DeadLetterList(deadLetters=page.letters, total=page.total, byReason=page.by_reason)
