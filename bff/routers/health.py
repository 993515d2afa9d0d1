from fastapi import APIRouter

from bff.deps import ReaderDep, SettingsDep
from bff.models import Health

router = APIRouter(prefix="/api", tags=["health"])


@router.get("/health", response_model=Health, operation_id="getHealth")
def health(settings: SettingsDep, reader: ReaderDep) -> Health:
    """Liveness plus the table's newest commit (null until ingestion's first commit). Never needs a token."""
    return Health(status="ok", tableUri=settings.table_uri, latestCommit=reader.latest_commit(),
                  backend=reader.backend)
