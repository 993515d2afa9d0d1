"""One storage layer for every path the platform reads or writes beside Spark: local folders and ``gs://``.

Built on pyarrow's file systems (``pyarrow.fs``), not fsspec/gcsfs: pyarrow is already how the platform
reads and writes Parquet and Arrow (dead letters, staged batches, the timeline's files), its GCS client is
compiled in (no extra package, no event loop), and ``pyarrow.parquet``/``pyarrow.dataset`` take its file
systems directly. Spark and Hudi reach the same URIs through Hadoop's connectors; hudi-rs through
object_store.

``gs://`` honours ``STORAGE_EMULATOR_HOST`` (the variable Google's own clients read): set, the client talks
plain HTTP to that host without credentials (fake-gcs-server, the local stand-in for Cloud Storage);
unset, Application Default Credentials as on GCP.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.fs as pafs

EMULATOR_ENV = "STORAGE_EMULATOR_HOST"


def is_remote(uri: str | Path) -> bool:
    return "://" in str(uri) and not str(uri).startswith("file://")


def filesystem(uri: str | Path) -> tuple[pafs.FileSystem, str]:
    """(file system, path within it) for a local path, a ``file://`` URI or a ``gs://bucket/...`` URI."""
    text = str(uri)
    if text.startswith("gs://"):
        return _gcs(), text.removeprefix("gs://").rstrip("/")
    if "://" in text and not text.startswith("file://"):
        fs, path = pafs.FileSystem.from_uri(text)
        return fs, path
    return pafs.LocalFileSystem(), str(Path(text.removeprefix("file://")))


def join(uri: str | Path, *parts: str) -> str:
    """``uri`` with ``parts`` appended (``/``-separated, for URIs and local paths alike)."""
    return "/".join([str(uri).rstrip("/"), *(p.strip("/") for p in parts)])


def _gcs() -> pafs.GcsFileSystem:
    emulator = os.environ.get(EMULATOR_ENV)
    if emulator:
        scheme, _, host = emulator.rpartition("://")
        return pafs.GcsFileSystem(anonymous=True, scheme=scheme or "http", endpoint_override=host,
                                  project_id=os.environ.get("OBS_GCP_PROJECT", "obs-local"))
    return pafs.GcsFileSystem()


def list_files(uri: str | Path, suffix: str = "", recursive: bool = True) -> list[str]:
    """Files under ``uri`` (path within its file system, sorted); [] when the folder does not exist."""
    fs, root = filesystem(uri)
    infos = fs.get_file_info(pafs.FileSelector(root, recursive=recursive, allow_not_found=True))
    return sorted(i.path for i in infos if i.type == pafs.FileType.File and i.path.endswith(suffix))


def make_dirs(uri: str | Path) -> None:
    fs, path = filesystem(uri)
    fs.create_dir(path, recursive=True)


def hudi_rs_options(uri: str, state_dir: Path) -> dict[str, str]:
    """Storage options for hudi-rs (object_store) on ``uri``: none locally or on GCP (Application Default
    Credentials); against the emulator, a service-account file carrying ``gcs_base_url`` and
    ``disable_oauth`` (how object_store's own tests reach fake-gcs-server), written under ``state_dir``."""
    emulator = os.environ.get(EMULATOR_ENV)
    if not str(uri).startswith("gs://") or not emulator:
        return {}
    import json

    path = Path(state_dir) / "gcs-emulator-service-account.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"gcs_base_url": emulator, "disable_oauth": True, "client_email": "",
                                    "private_key": "", "private_key_id": ""}))
    return {"google_service_account": str(path)}
