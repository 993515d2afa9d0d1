"""Run the alerter alone (outside the BFF): ``python -m obs_platform.alerts``. Stops on SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import signal
import threading

from obs_platform.alerts.service import AlertService
from obs_platform.settings import get_settings


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    service = AlertService(get_settings()).start()
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    service.stop()


if __name__ == "__main__":
    main()
