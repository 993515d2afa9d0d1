"""The dead-letter store: every message ingestion could not decode, kept whole with its reason.

Part of the table's state (beside the timeline), below both the writer that appends to it and the readers
that serve it. Parquet files under ``<lake>/<database>/dead_letters/<yyyy-mm-dd>/``, one per micro-batch,
written before the batch is acked, so a crash can only duplicate a dead letter (read back deduplicated by
messageId), never lose one. They survive restarts and can be replayed (republished to the topic, byte for
byte) once their cause is fixed; a replay is recorded under ``replayed/`` so the letter no longer counts as
pending. The command line is ``python -m obs_platform.ingestion.dead_letters``.
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

log = logging.getLogger(__name__)

_TS = pa.timestamp("ms", tz="UTC")
DEAD_LETTER_SCHEMA = pa.schema(
    [
        pa.field("messageId", pa.string(), nullable=False),
        pa.field("publishTime", _TS, nullable=False),
        pa.field("receivedAt", _TS, nullable=False),
        pa.field("attributes", pa.map_(pa.string(), pa.string())),
        pa.field("data", pa.binary(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
    ]
)


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

    @property
    def _replayed_dir(self) -> Path:
        return self.root / "replayed"

    def replayed_ids(self) -> set[str]:
        files = sorted(self._replayed_dir.glob("*.parquet"))
        if not files:
            return set()
        return set(ds.dataset(files, format="parquet").to_table(columns=["messageId"]).column("messageId").to_pylist())

    def pending(self) -> pa.Table:
        """Dead letters not replayed yet, newest first."""
        table = self.read()
        replayed = self.replayed_ids()
        if not replayed or table.num_rows == 0:
            return table
        return table.filter(pc.invert(pc.is_in(table.column("messageId"), pa.array(sorted(replayed)))))

    def replay(self, publish, reason: str | None = None, message_ids: set[str] | None = None) -> int:
        """Republish pending dead letters (all, or those with ``reason`` / ``message_ids``) through
        ``publish(data, attributes) -> future``; record them as replayed once Pub/Sub accepted them."""
        table = self.pending()
        if reason:
            table = table.filter(pc.equal(table.column("reason"), reason))
        if message_ids:
            table = table.filter(pc.is_in(table.column("messageId"), pa.array(sorted(message_ids))))
        rows = table.to_pylist()
        futures = [publish(bytes(r["data"]), {**dict(r["attributes"] or []), "replayOf": r["messageId"]})
                   for r in rows]
        for fut in futures:
            fut.result(timeout=60)
        if rows:
            self._replayed_dir.mkdir(parents=True, exist_ok=True)
            marker = pa.table({"messageId": [r["messageId"] for r in rows],
                               "replayedAt": pa.array([datetime.now(UTC)] * len(rows), pa.timestamp("ms", tz="UTC"))})
            pq.write_table(marker, self._replayed_dir / f"replay-{uuid.uuid4().hex[:12]}.parquet")
        log.info("replayed %d dead letters", len(rows))
        return len(rows)

    def read(self) -> pa.Table:
        """Every dead letter, newest first, one row per messageId (replayed ones included)."""
        files = sorted(self.root.glob("*/batch-*.parquet"))
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
