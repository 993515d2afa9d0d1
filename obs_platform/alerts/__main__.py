"""Run the alerter alone (outside the BFF): ``python -m obs_platform.alerts``. Stops on SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import signal
import threading

from obs_platform.alerts.service import AlertService
from obs_platform.query import open_reader
from obs_platform.settings import get_settings


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    reader = open_reader("embedded", settings, cache=False)  # the table: learned history, then each commit
    service = AlertService(settings, reader=reader).start()
    logging.getLogger(__name__).info("alerter running on %s", service.store.path)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    service.stop()


if __name__ == "__main__":
    main()
