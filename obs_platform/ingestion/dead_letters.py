"""The dead-letter store: every message ingestion could not decode, kept whole with its reason.

Parquet files under ``<lake>/<database>/dead_letters/<yyyy-mm-dd>/``, one per micro-batch, written before
the batch is acked, so a crash can only duplicate a dead letter (read back deduplicated by messageId),
never lose one. They survive restarts and can be replayed (republished) once their cause is fixed.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from obs_platform.ingestion.batch import DEAD_LETTER_SCHEMA

log = logging.getLogger(__name__)


class DeadLetterStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def append(self, dead_letters: pa.Table, batch_id: int | str) -> Path | None:
        if dead_letters.num_rows == 0:
            return None
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        folder = self.root / day
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"batch-{batch_id}-{uuid.uuid4().hex[:8]}.parquet"
        tmp = final.with_suffix(".parquet.tmp")
        pq.write_table(dead_letters, tmp)
        tmp.rename(final)  # readers never see a half-written file
        log.warning("kept %d dead letters in %s", dead_letters.num_rows, final)
        return final

    def read(self) -> pa.Table:
        """Every dead letter, newest first, one row per messageId."""
        files = sorted(self.root.glob("*/*.parquet"))
        if not files:
            return DEAD_LETTER_SCHEMA.empty_table()
        table = ds.dataset(files, schema=DEAD_LETTER_SCHEMA, format="parquet").to_table()
        table = table.sort_by([("receivedAt", "descending")])
        # keep the first (newest) row of each messageId
        ids = table.column("messageId").to_pylist()
        seen: set[str] = set()
        keep = [not (i in seen or seen.add(i)) for i in ids]
        return table.filter(pa.array(keep))

    def count(self) -> int:
        return self.read().num_rows

    def count_by_reason(self) -> dict[str, int]:
        table = self.read()
        if table.num_rows == 0:
            return {}
        counts = pc.value_counts(table.column("reason"))
        return {c["values"].as_py(): c["counts"].as_py() for c in counts}
