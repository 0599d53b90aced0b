"""The threads of kerma serve keep going when a round fails, and stop when asked."""

from __future__ import annotations

import threading
import time

from server.periodic import Periodic


class Flaky(Periodic):
    def __init__(self) -> None:
        super().__init__("flaky")
        self.rounds = 0
        self.third = threading.Event()

    def wait_s(self) -> float:
        return 0.01

    def tick(self) -> None:
        self.rounds += 1
        if self.rounds == 3:
            self.third.set()
        if self.rounds % 2:
            raise OSError("the store is away")


def test_a_failing_round_does_not_end_the_thread() -> None:
    flaky = Flaky()
    flaky.start()
    assert flaky.third.wait(5)  # rounds 1 and 3 failed, 2 and 3 ran
    flaky.stop()
    stopped_at = flaky.rounds
    time.sleep(0.05)
    assert flaky.rounds == stopped_at  # stopped means stopped
