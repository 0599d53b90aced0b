"""The threads of `kerma serve` that do something again and again (pull from the PACS, send
notifications, submit the daily run): start, stop, and a failing round that is logged and
does not end the thread."""

from __future__ import annotations

import logging
import threading

from server.logs import log_event

log = logging.getLogger("kerma.jobs")


class Periodic:
    """Runs `tick` after each `wait_s()` seconds until stopped."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"kerma-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 60) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def wait_s(self) -> float:
        raise NotImplementedError

    def tick(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stopping.wait(self.wait_s()):
            try:
                self.tick()
            except Exception as e:  # the store, the PACS or Redis is away: the next round tries
                log_event(log, f"{self._name}-failed", error=type(e).__name__, detail=str(e))
