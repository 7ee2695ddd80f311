"""Moving the sandbox clock, and one order's clock, the way a test clock should move.

Advancing walks the clock through every scenario step that falls due on the way, so each step
runs at its own time (a payment 3 s in is stamped 3 s in, before an expiry an hour later), then
lands on the target. Notify attempts need no walk: their ladder is counted from scheduled times.
The clock's state is kept in the ``meta`` table, so a restarted sandbox keeps its time and its
pending ladders still line up.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from sandbox.core.clock import EARLIEST, LATEST, Clock
from sandbox.core.engine import Engine, Order
from sandbox.core.scheduler import DUE_SLACK, Scheduler
from sandbox.core.store import Store
from sandbox.scenarios.runner import ScenarioRunner
from sandbox.wire.errors import SandboxError

log = logging.getLogger(__name__)

META_KEY = "clock"
MAX_STOPS = 100_000
# how long a move of the clock waits for what it made due (notify attempts it passed) to go out,
# so that its answer names what is due next rather than what it has just left behind
SETTLE_SECONDS = 0.5


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


class TimeKeeper:
    """Moves ``clock`` through ``runner``'s due steps; ``other_due`` are the other jobs' next due
    times (the notifier's), reported in ``describe``."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        engine: Engine,
        runner: ScenarioRunner,
        scheduler: Scheduler,
        other_due: Sequence[Callable[[], float | None]] = (),
    ) -> None:
        self.store = store
        self.clock = clock
        self.engine = engine
        self.runner = runner
        self.scheduler = scheduler
        self.other_due = tuple(other_due)
        saved = store.get_meta(META_KEY)
        if saved:
            try:
                self.clock.restore(_json_or_none(saved))
            except ValueError as why:
                log.warning("the saved sandbox clock (%.80s) is %s: starting afresh", saved, why)
        # saved now too: a clock running faster than wall time drifts without any event
        self.save()
        self.clock.subscribe(self.save)

    def save(self) -> None:
        self.store.set_meta(META_KEY, json.dumps(self.clock.state()))

    def describe(self) -> dict[str, Any]:
        info = self.clock.describe()
        found = (next_due() for next_due in (self.runner.next_due, *self.other_due))
        due = [d for d in found if d is not None]
        # something overdue is due now (the notifier is catching up): never a time in the past
        info["next_due_at"] = (
            self.clock.format(max(min(due), self.clock.timestamp())) if due else None
        )
        return info

    def _settled(self) -> dict[str, Any]:
        """The clock's description once what the move made due has been sent (bounded)."""
        self.scheduler.wake()
        self.scheduler.drain(SETTLE_SECONDS)
        return self.describe()

    def advance(self, seconds: float) -> dict[str, Any]:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._check_global_target("seconds", self.clock.timestamp() + seconds)
        self._walk(seconds)
        return self._settled()

    def set(self, timestamp: float) -> dict[str, Any]:
        """Jump to a time: forward walks through due steps; backward just sets the clock."""
        self._check_global_target("time", timestamp)
        if timestamp > self.clock.timestamp():
            self._walk(timestamp - self.clock.timestamp())
            return self._settled()
        self.engine.settle_expired()
        self.clock.set(timestamp)
        return self.describe()

    def reset(self) -> dict[str, Any]:
        self.engine.settle_expired()  # (reset usually takes the clock back)
        self.clock.reset()
        return self.describe()

    def set_speed(self, speed: float) -> dict[str, Any]:
        self.clock.set_speed(speed)
        return self.describe()

    def advance_order(self, pay_order_no: str, seconds: float) -> Order:
        """Move one order's own clock (its expiry, waits and notify ladder), no other's."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        scenarios, engine = self.runner, self.engine
        self._check_target("seconds", engine.now_for(engine.get(pay_order_no)) + seconds)
        moved = 0.0
        with scenarios.lock:
            for _ in range(MAX_STOPS):
                due = scenarios.next_due_for(pay_order_no)
                if due is None:
                    break
                step = due - engine.now_for(engine.get(pay_order_no))
                if moved + step > seconds + DUE_SLACK:
                    break
                if step > 0:
                    engine.advance_order(pay_order_no, step)
                    moved += step
                scenarios.run_due()
                if scenarios.next_due_for(pay_order_no) == due:
                    break  # it did not run (a broken run): never spin on it
            engine.advance_order(pay_order_no, max(seconds - moved, 0.0))
        self.scheduler.wake()
        return engine.get(pay_order_no)

    def _check_global_target(self, field: str, timestamp: float) -> None:
        """The sandbox clock at ``timestamp`` keeps every order's own clock (it plus the order's
        offset) within the years too: a list of orders could not show one past 9999."""
        self._check_target(field, timestamp)
        ahead = self.engine.furthest_ahead()
        if ahead is not None and timestamp > self.clock.timestamp():
            no, offset = ahead
            if not self.clock.in_range(timestamp + offset):
                raise SandboxError(
                    "INVALID_PARAM",
                    field=field,
                    rule=(
                        f"would put order {no}'s own clock, {offset:.0f} s ahead of the sandbox "
                        f"clock, past {self.clock.format(LATEST)}; the sandbox clock may go up "
                        f"to {self.clock.format(LATEST - offset)} "
                        "(POST /sandbox/api/reset forgets the orders)"
                    ),
                )

    def _check_target(self, field: str, timestamp: float) -> None:
        if not self.clock.in_range(timestamp):
            raise SandboxError(
                "INVALID_PARAM",
                field=field,
                rule=(
                    f"must keep the clock between {self.clock.format(EARLIEST)} and "
                    f"{self.clock.format(LATEST)} (the years a yyyyMMddHHmmss can show)"
                ),
            )

    def _walk(self, seconds: float) -> None:
        """Advance by exactly ``seconds``, stopping at each scenario step due on the way."""
        scenarios = self.runner
        moved = 0.0
        with scenarios.lock:
            for _ in range(MAX_STOPS):
                due = scenarios.next_due()
                if due is None:
                    break
                step = due - self.clock.timestamp()
                if moved + step > seconds + DUE_SLACK:
                    break
                if step > 0:
                    self.clock.advance(step)
                    moved += step
                scenarios.run_due()
                if scenarios.next_due() == due:
                    break  # it did not run (a broken run): never spin on it
            if seconds - moved > 0:
                self.clock.advance(seconds - moved)
