"""The background worker: a wait for work to settle watches it, and does not drive it."""

from __future__ import annotations

import threading
import time

from sandbox.core.clock import Clock
from sandbox.core.scheduler import Scheduler


class SlowDelivery:
    """A job with one delivery in flight for ``seconds``, counting the worker's passes."""

    def __init__(self, scheduler: Scheduler, seconds: float) -> None:
        self.passes = 0
        self.done = threading.Event()
        self.scheduler = scheduler
        self.seconds = seconds
        self.started = False

    def run_due(self) -> None:
        self.passes += 1
        if not self.started:
            self.started = True
            threading.Timer(self.seconds, self._finish).start()

    def _finish(self) -> None:
        self.done.set()
        self.scheduler.wake()  # as a finished delivery does

    def next_due(self) -> float | None:
        return None

    def busy(self) -> bool:
        return self.started and not self.done.is_set()

    def stop(self, timeout: float) -> None:
        self.done.wait(timeout)


def test_a_drain_waits_for_work_in_flight_without_spinning_the_worker() -> None:
    scheduler = Scheduler(Clock())
    job = SlowDelivery(scheduler, 0.4)
    scheduler.add(job)
    scheduler.wake()
    started = time.monotonic()
    assert scheduler.drain(5)
    waited = time.monotonic() - started
    assert job.done.is_set() and 0.3 < waited < 3
    # a pass when woken, about one per 50 ms of waiting, one when the delivery ends (asking
    # for a pass each time round made thousands in the same wait)
    assert job.passes <= 4 + 2 * waited / 0.05, (job.passes, waited)
    scheduler.stop()


def test_a_drain_that_times_out_says_so() -> None:
    scheduler = Scheduler(Clock())
    job = SlowDelivery(scheduler, 1.0)
    scheduler.add(job)
    scheduler.wake()
    assert not scheduler.drain(0.2)
    assert scheduler.drain(5)
    scheduler.stop()
