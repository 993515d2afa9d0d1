"""Reading the Hudi 1.x timeline from its file names (layout 2): completion times, table services, pending."""

from obs_platform.lakehouse.timeline import completion_times, latest_write_instant, list_timeline

NAMES = [
    "20261126100000000.commit.requested", "20261126100000000.inflight", "20261126100000000_20261126100005000.commit",
    # a savepoint carries the instant of the commit it keeps
    "20261126100000000.savepoint.inflight", "20261126100000000_20261126100300000.savepoint",
    "20261126100100000.clustering.requested", "20261126100100000.clustering.inflight",
    "20261126100100000_20261126100130000.replacecommit",
    "20261126100200000.clean.requested", "20261126100200000.clean.inflight", "20261126100200000_20261126100201000.clean",
    "20261126100400000.commit.requested", "20261126100400000.inflight",  # in flight
    "20261126100500000.rollback.requested",
]


def test_one_entry_per_instant_and_action_with_what_was_planned(tmp_path):
    timeline = tmp_path / ".hoodie" / "timeline"
    timeline.mkdir(parents=True)
    (timeline / "history").mkdir()
    for name in NAMES:
        (timeline / name).write_bytes(b"")
        (timeline / f".{name}.crc").write_bytes(b"")
    files = [(f.instant[8:12], f.action, f.state, f.completed and f.completed[8:14], f.planned)
             for f in list_timeline(str(tmp_path))]
    assert files == [
        ("1000", "commit", "completed", "100005", None),
        ("1000", "savepoint", "completed", "100300", None),
        ("1001", "replacecommit", "completed", "100130", "clustering"),
        ("1002", "clean", "completed", "100201", None),
        ("1004", "commit", "inflight", None, None),
        ("1005", "rollback", "requested", None, None),
    ]
    # the newest completed write (clustering's replacecommit counts; clean, savepoint, in-flight do not)
    assert latest_write_instant(str(tmp_path)) == (True, "20261126100100000")
    assert completion_times(list_timeline(str(tmp_path))) == {
        "20261126100000000": "20261126100005000", "20261126100100000": "20261126100130000"}


def test_a_missing_table_has_an_empty_timeline(tmp_path):
    assert list_timeline(str(tmp_path / "nothing")) == []
    assert latest_write_instant(str(tmp_path / "nothing")) == (False, None)
