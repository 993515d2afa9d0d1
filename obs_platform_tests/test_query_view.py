"""The cached view's bookkeeping, pure Arrow: after any sequence of upserts (with merges of small parts and
compactions) it answers exactly what a sort of the true current state answers, for every page."""

import random
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from obs_platform.query.base import EventQuery
from obs_platform.query.view import COMMIT, SCHEMA, Part, View, normalize, select, sort_rows

T0 = datetime(2026, 1, 1, tzinfo=UTC)
C0 = 20260101000000000


def batch(rng: random.Random, ids: list[str], commit: int, minute: int) -> pa.Table:
    n = len(ids)
    return normalize(pa.table({
        "_hoodie_commit_time": [str(commit)] * n, "eventId": ids, "correlationId": ["c"] * n,
        "pipelineName": [rng.choice(["orders", "billing"]) for _ in ids], "stageName": ["load"] * n,
        "status": [rng.choice(["RUNNING", "FAILED"]) for _ in ids], "eventTimestamp": [T0] * n,
        "processedRecordCount": [minute] * n, "sourceRecordCount": [None] * n,
        "errorMessage": [rng.choice([None, "Disk FULL", "timeout"]) for _ in ids],
        # ties on lastUpdatedAt happen: eventId breaks them
        "lastUpdatedAt": [T0 + timedelta(minutes=minute + rng.choice([0, 0.5, 30])) for _ in ids],
    }))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_upserts_merges_and_compactions_keep_the_answers_exact(seed):
    rng = random.Random(seed)
    truth: dict[str, dict] = {}
    first = batch(rng, [f"k{i}" for i in range(500)], C0, 0)
    truth.update({r["eventId"]: r for r in first.to_pylist()})
    view = View(str(C0), [Part(sort_rows(first))], frozenset())
    for n in range(1, 30):
        ids = rng.sample(sorted(truth) + [f"new{n}-{i}" for i in range(10)], 40)
        changed = batch(rng, ids, C0 + n, n)
        truth.update({r["eventId"]: r for r in changed.to_pylist()})
        view = view.advanced(str(C0 + n), changed, frozenset(), max_parts=4)
        if n % 7 == 0 and view.needs_compaction(0.05):
            view = view.compacted()
        expected = sort_rows(pa.Table.from_pylist(list(truth.values()), schema=SCHEMA))
        assert view.rows == len(truth) and len(view.parts) <= 4
        for query, after in ((EventQuery(limit=10_000), None), (EventQuery(limit=5, offset=7), C0 + n - 2),
                             (EventQuery(limit=20, statuses=("FAILED",), text="disk full"), None),
                             (EventQuery(limit=3, pipelines=("billing",), offset=2), C0 + 1)):
            mask = pc.greater(expected[COMMIT], after) if after else None
            if query.statuses:
                mask = pc.and_(pc.equal(expected["status"], "FAILED"),
                               pc.fill_null(pc.equal(expected["errorMessage"], "Disk FULL"), False))
            if query.pipelines:
                mask = pc.and_(mask, pc.equal(expected["pipelineName"], "billing"))
            want = expected.filter(mask) if mask is not None else expected
            rows, total = select(view.parts, query, query.offset, query.limit, after=after)
            assert total == want.num_rows
            assert rows.to_pylist() == want.slice(query.offset, query.limit).to_pylist(), (n, query)
