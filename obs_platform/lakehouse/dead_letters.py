"""The dead-letter store: every message ingestion could not decode, kept whole with its reason.

Part of the table's state (beside the timeline), below both the writer that appends to it and the readers
that serve it. Parquet files under ``<lake>/<database>/dead_letters/<yyyy-mm-dd>/`` (a folder or ``gs://``), one per micro-batch,
written before the batch is acked, so a crash can only duplicate a dead letter (read back deduplicated by
messageId), never lose one. They survive restarts and can be replayed (republished to the topic, byte for
byte) once their cause is fixed; a replay is recorded under ``replayed/`` so the letter no longer counts as
pending. The command line is ``python -m obs_platform.ingestion.dead_letters``.
"""

from __future__ import annotations

import logging
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from obs_platform.lakehouse import storage

log = logging.getLogger(__name__)

_BATCH = re.compile(r"[^/]+/batch-[^/]*\.parquet")
_REPLAYED = re.compile(r"replayed/[^/]*\.parquet")

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
    """Under a local folder or a ``gs://`` URI (``lakehouse.storage``)."""

    def __init__(self, root: str | Path):
        self.root = str(root)
        self._fs, self._root = storage.filesystem(root)

    def append(self, dead_letters: pa.Table, batch_id: int | str) -> str | None:
        if dead_letters.num_rows == 0:
            return None
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        folder = f"{self._root}/{day}"
        self._fs.create_dir(folder, recursive=True)
        final = f"{folder}/batch-{batch_id}-{uuid.uuid4().hex[:8]}.parquet"
        if isinstance(self._fs, pafs.LocalFileSystem):
            tmp = final + ".tmp"
            pq.write_table(dead_letters, tmp, filesystem=self._fs)
            self._fs.move(tmp, final)  # readers never see a half-written file
        else:  # an object store publishes an object only once its upload completed
            pq.write_table(dead_letters, final, filesystem=self._fs)
        log.warning("kept %d dead letters in %s", dead_letters.num_rows, final)
        return final

    def _files(self, pattern: re.Pattern[str], folder: str = "") -> list[str]:
        root = f"{self._root}/{folder}".rstrip("/")
        infos = self._fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
        return sorted(i.path for i in infos if i.type == pafs.FileType.File
                      and pattern.fullmatch(i.path[len(self._root) + 1:]))

    def replayed_ids(self) -> set[str]:
        files = self._files(_REPLAYED, "replayed")
        if not files:
            return set()
        table = ds.dataset(files, format="parquet", filesystem=self._fs).to_table(columns=["messageId"])
        return set(table.column("messageId").to_pylist())

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
            self._fs.create_dir(f"{self._root}/replayed", recursive=True)
            marker = pa.table({"messageId": [r["messageId"] for r in rows],
                               "replayedAt": pa.array([datetime.now(UTC)] * len(rows), pa.timestamp("ms", tz="UTC"))})
            pq.write_table(marker, f"{self._root}/replayed/replay-{uuid.uuid4().hex[:12]}.parquet",
                           filesystem=self._fs)
        log.info("replayed %d dead letters", len(rows))
        return len(rows)

    def read(self) -> pa.Table:
        """Every dead letter, newest first, one row per messageId (replayed ones included)."""
        files = self._files(_BATCH)
        if not files:
            return DEAD_LETTER_SCHEMA.empty_table()
        table = ds.dataset(files, schema=DEAD_LETTER_SCHEMA, format="parquet", filesystem=self._fs).to_table()
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
