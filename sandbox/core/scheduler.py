"""The one background worker: runs scenario steps and notify deliveries when the clock says so.

It starts lazily (when work is scheduled, or at start-up when the store still holds pending work
from before a restart) or from the app's lifespan under uvicorn; it sleeps until the next due
time or until woken (a clock jump, a new notify, a finished delivery) and stops by itself when
nothing is left, so an in-process sandbox in a test costs no thread until it needs one.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sandbox.core.clock import Clock

log = logging.getLogger("lakala_sandbox.scheduler")

# Upper bound on a sleep: a change nobody announced (another module moving an order's clock)
# is still noticed within this many wall seconds.
MAX_SLEEP = 1.0
# A job's work is due when the clock is within this of its time: a clock walked to it by adding
# seconds may land a rounding error short.
DUE_SLACK = 1e-6


class Job(Protocol):
    def run_due(self) -> None:
        """Do (or start) everything due now; never raises."""

    def next_due(self) -> float | None:
        """Sandbox-clock timestamp of the next thing to do that is not in progress, or None."""

    def busy(self) -> bool:
        """Work in progress elsewhere (a delivery thread) that will wake the scheduler when done."""

    def stop(self, timeout: float) -> None:
        """Let work in progress finish, for at most ``timeout`` seconds."""


class Scheduler:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.jobs: list[Job] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._woken = False
        self._stopped = False
        self._passes = 0
        clock.subscribe(self.wake)

    def add(self, job: Job) -> None:
        self.jobs.append(job)

    # -- control ---------------------------------------------------------------------------
    def wake(self) -> None:
        """Look again now (and start the worker if it is not running)."""
        with self._cond:
            if self._stopped:
                return
            self._woken = True
            self._cond.notify_all()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="lakala-sandbox-scheduler", daemon=True
                )
                self._thread.start()

    def wake_if_pending(self) -> None:
        if self._has_work():
            self.wake()

    def start(self) -> None:
        with self._cond:
            self._stopped = False
        self.wake()

    def resume(self) -> None:
        """After ``stop``: work again, starting the worker when work comes (as when new)."""
        with self._cond:
            self._stopped = False
            self._woken = False

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        for job in self.jobs:
            job.stop(timeout)

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is due on the clock and nothing is in flight; False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if self._settled():
                return True
            if time.monotonic() >= deadline:
                return False
            if self._thread is None:
                self.wake()
            # Look again after the worker's next pass (deliveries that finish wake it), or after
            # 50 ms without one, when a pass is asked for. Asking for a pass each time round kept
            # the worker querying the store back to back for as long as the wait lasted, which
            # slowed the very deliveries being waited for.
            with self._cond:
                passes = self._passes
                until = min(deadline, time.monotonic() + 0.05)
                while self._passes == passes and (left := until - time.monotonic()) > 0:
                    self._cond.wait(left)
                if self._passes == passes:
                    self._woken = True
                    self._cond.notify_all()

    # -- the worker -------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            for job in self.jobs:
                try:
                    job.run_due()
                except Exception:  # the worker must outlive any one bad job run
                    log.exception("scheduled work failed")
            wait = self._sleep_for()
            with self._cond:
                self._passes += 1
                self._cond.notify_all()
                if self._stopped:
                    self._thread = None
                    return
                if self._woken:
                    self._woken = False
                    continue
                if wait is None:
                    self._thread = None  # nothing left: the next wake() starts a new worker
                    return
                self._cond.wait(wait)
                self._woken = False

    def _sleep_for(self) -> float | None:
        try:
            due = [d for d in (job.next_due() for job in self.jobs) if d is not None]
            busy = any(job.busy() for job in self.jobs)
        except Exception:
            log.exception("cannot read the schedule")
            return MAX_SLEEP
        if not due:
            return MAX_SLEEP if busy else None
        delta = min(due) - self.clock.timestamp()
        if delta <= 0:
            return 0.01  # due but not taken (e.g. held behind a delivery in flight): look soon
        if self.clock.speed == 0:
            return MAX_SLEEP
        return min(delta / self.clock.speed, MAX_SLEEP)

    def _has_work(self) -> bool:
        return any(job.next_due() is not None or job.busy() for job in self.jobs)

    def _settled(self) -> bool:
        now = self.clock.timestamp()
        for job in self.jobs:
            if job.busy():
                return False
            due = job.next_due()
            if due is not None and due <= now + 1e-6:
                return False
        return True
