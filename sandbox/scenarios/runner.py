"""``sb.runner``: starts each new order's scenario and runs its steps on the order's clock.

A run is a row in ``scenario_runs`` (the steps as they were when the order was made, the next
step and when it is due), so a wait in progress survives a restart. Waits are counted from the
time the previous step was due, so advancing the clock an hour runs every step that fell in that
hour, each at its own time (the clock is walked through them by ``timekeeper.py``). An action
step is ``engine.apply`` exactly as a page click is; a step the order's state forbids stops the
run with the engine's reason, visible in ``GET /sandbox/api/orders/{no}/scenario``.
"""

from __future__ import annotations

import builtins
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from sandbox.core.clock import Clock
from sandbox.core.engine import Change, Engine, Order
from sandbox.core.refunds import Outcome, RefundBook
from sandbox.core.scheduler import DUE_SLACK, Scheduler
from sandbox.core.store import Store
from sandbox.scenarios.faults import Faults
from sandbox.scenarios.files import Catalog, CreateView, Scenario, rule_text
from sandbox.wire.errors import SandboxError
from sandbox.wire.schemas import BASE_URI, Schemas
from sandbox.wire.vocabulary import ACTIONS, OrderStatus

log = logging.getLogger("lakala_sandbox.scenarios")

MAX_STEPS_PER_PASS = 10_000
RUNS_PER_READ = 100

# what a ``notify`` step calls: (pay_order_no, policy, kind) -> the attempts queued
SendNotify = Callable[[str, Any, str], Any]


def fragment_problems(schemas: Schemas, name: str) -> Callable[[Any], list[str]]:
    """A checker for one ``$defs`` entry of the scenario schema: value -> messages."""
    validator = Draft202012Validator(
        {"$ref": f"{BASE_URI}scenario.schema.json#/$defs/{name}"},
        registry=schemas.registry,
        format_checker=FormatChecker(),
    )

    def problems(value: Any) -> list[str]:
        found = []
        for error in validator.iter_errors(value):
            where = ".".join(str(p) for p in error.absolute_path)
            found.append(f"{where + ': ' if where else ''}{rule_text(error)}")
        return found

    return problems


class ScenarioRunner:
    """Runs scenarios from ``catalog``; ``active`` False (real mode) starts none.

    ``send_notify`` is what a ``notify`` step calls; ``wake`` tells the scheduler a run is due.
    """

    def __init__(
        self,
        *,
        store: Store,
        engine: Engine,
        clock: Clock,
        schemas: Schemas,
        catalog: Catalog,
        default: str,
        faults: Faults,
        scheduler: Scheduler,
        send_notify: SendNotify,
        active: bool = True,
        refunds: RefundBook | None = None,
    ) -> None:
        self.store = store
        self.engine = engine
        self.clock = clock
        self.catalog = catalog
        self.default = default
        self.faults = faults
        self.scheduler = scheduler
        self.send_notify = send_notify
        self.active = active
        self.refunds = refunds
        self.lock = threading.RLock()
        self._step_problems = fragment_problems(schemas, "step")
        engine.listeners.append(self._on_change)

    # -- the catalog -----------------------------------------------------------------------
    def list(self) -> dict[str, Any]:
        return {"default": self.default, "scenarios": [s.as_dict() for s in self.catalog.scenarios]}

    def get(self, name: str) -> Scenario:
        scenario = self.catalog.get(name)
        if scenario is None:
            raise SandboxError(
                "SCENARIO_NOT_FOUND", name=name, known=", ".join(self.catalog.names())
            )
        return scenario

    def set_default(self, name: str) -> Scenario:
        """The scenario orders get when nothing names or matches another (until restart)."""
        scenario = self.get(name)
        self.default = scenario.name
        return scenario

    def choose(self, view: CreateView) -> tuple[Scenario, str]:
        return self.catalog.choose(view, self.default)

    # -- runs ------------------------------------------------------------------------------
    def run_for(self, pay_order_no: str) -> dict[str, Any] | None:
        rows = self.store.execute(
            "SELECT * FROM scenario_runs WHERE pay_order_no = ?", (pay_order_no,)
        )
        if not rows:
            return None
        r = rows[0]
        steps = json.loads(r["steps"])
        return {
            "pay_order_no": r["pay_order_no"],
            "scenario": r["scenario"],
            "reason": r["reason"],
            "state": r["state"],
            "error": r["error"],
            "steps": steps,
            "next_step": r["step_index"] if r["state"] == "active" else None,
            "next_due_at": self.clock.format(r["due_ts"]) if r["state"] == "active" else None,
            "log": json.loads(r["log"]),
        }

    def _on_change(self, change: Change) -> None:
        if change.action != "create" or not self.active:
            return
        order = change.order
        if change.scenario is not None:  # chosen by the endpoint, once, before the create
            scenario, reason = self.get(change.scenario.name), change.scenario.reason
        else:  # a create from elsewhere (the proxy's mirror, a test): choose here
            scenario, reason = self.choose(CreateView.of(order.dialect, order.data, None))
        self.start(order, scenario, reason)

    def start(self, order: Order, scenario: Scenario, reason: str) -> None:
        state = "active" if scenario.steps else "done"
        self.store.execute(
            "INSERT OR REPLACE INTO scenario_runs (pay_order_no, scenario, reason, steps, "
            "step_index, due_ts, state) VALUES (?, ?, ?, ?, 0, ?, ?)",
            (
                order.pay_order_no,
                scenario.name,
                reason,
                scenario.steps_json,
                self.engine.now_for(order),
                state,
            ),
        )
        if state == "active":
            self.scheduler.wake()

    def run_step(self, pay_order_no: str, step: Any, *, source: str = "admin") -> Order:
        """Run one step now, as a page click or an admin call would (``wait`` is refused)."""
        problems = self._step_problems(step)
        if problems:
            raise SandboxError("INVALID_PARAM", field="step", rule=problems[0])
        ((key, value),) = step.items()
        if key == "wait":
            raise SandboxError(
                "INVALID_PARAM",
                field="step",
                rule="wait only makes sense in a scenario file; advance the clock",
            )
        order = self.engine.get(pay_order_no)
        self._execute(order, key, value, source=source, scenario=None)
        return self.engine.get(pay_order_no)

    # -- the scheduler's job ---------------------------------------------------------------
    def run_due(self) -> None:
        with self.lock:
            done = 0
            while done < MAX_STEPS_PER_PASS:
                # a batch at a time, in due order: a run's steps never make another run due
                # sooner, and reading one at a time sorted every active run once per step
                rows = self.store.execute(
                    "SELECT r.pay_order_no FROM scenario_runs r JOIN orders o "
                    "ON o.pay_order_no = r.pay_order_no WHERE r.state = 'active' "
                    "AND r.due_ts <= ? + o.clock_offset ORDER BY r.due_ts - o.clock_offset "
                    "LIMIT ?",
                    (self.clock.timestamp() + DUE_SLACK, RUNS_PER_READ),
                )
                if not rows:
                    return
                for row in rows:
                    self._continue(row["pay_order_no"])
                done += len(rows)

    def next_due(self) -> float | None:
        rows = self.store.execute(
            "SELECT MIN(r.due_ts - o.clock_offset) AS due FROM scenario_runs r JOIN orders o "
            "ON o.pay_order_no = r.pay_order_no WHERE r.state = 'active'"
        )
        due = rows[0]["due"]
        return None if due is None else float(due)

    def next_due_for(self, pay_order_no: str) -> float | None:
        """When the order's run next has something to do, on the order's own clock."""
        rows = self.store.execute(
            "SELECT due_ts FROM scenario_runs WHERE pay_order_no = ? AND state = 'active'",
            (pay_order_no,),
        )
        return float(rows[0]["due_ts"]) if rows else None

    def busy(self) -> bool:
        return False

    def stop(self, timeout: float) -> None:
        return None

    def _continue(self, pay_order_no: str) -> None:
        """Run the order's steps from the current one until a wait that is not over, or the end."""
        rows = self.store.execute(
            "SELECT * FROM scenario_runs WHERE pay_order_no = ? AND state = 'active'",
            (pay_order_no,),
        )
        if not rows:
            return  # ended, or forgotten by a reset, since it was found due
        row = rows[0]
        steps: list[dict[str, Any]] = json.loads(row["steps"])
        index, due = int(row["step_index"]), float(row["due_ts"])
        entries: list[dict[str, Any]] = json.loads(row["log"])
        while index < len(steps):
            order = self.engine.get(pay_order_no)
            ((key, value),) = steps[index].items()
            if key == "wait":
                due = order.efficient_ts if value == "expiry" else due + float(value)
                index += 1
                if due > self.engine.now_for(order) + DUE_SLACK:
                    self._save(pay_order_no, index, due, "active", None, entries)
                    return
                continue
            at = self.clock.format(self.engine.now_for(order))
            try:
                with self.store.transaction():
                    self._execute(order, key, value, source="scenario", scenario=row["scenario"])
                    entries.append({"step": index, "action": key, "at": at, "ok": True})
                    self._save(pay_order_no, index + 1, due, "active", None, entries)
            except SandboxError as error:
                message = f"step {index + 1} ({key}): {error.message}"
                entries.append(
                    {"step": index, "action": key, "at": at, "ok": False, "error": error.message}
                )
                self._save(pay_order_no, index, due, "failed", message, entries)
                return
            except Exception as exc:  # a bug: stop this run, keep the worker alive
                log.exception("scenario step failed for %s", pay_order_no)
                self._save(
                    pay_order_no,
                    index,
                    due,
                    "failed",
                    f"step {index + 1} ({key}): internal error {type(exc).__name__}",
                    entries,
                )
                return
            index += 1
        self._save(pay_order_no, index, due, "done", None, entries)

    def _save(
        self,
        pay_order_no: str,
        index: int,
        due: float,
        state: str,
        error: str | None,
        entries: builtins.list[dict[str, Any]],  # (this class has a method named list)
    ) -> None:
        self.store.execute(
            "UPDATE scenario_runs SET step_index = ?, due_ts = ?, state = ?, "
            "error = ?, log = ? WHERE pay_order_no = ?",
            (index, due, state, error, json.dumps(entries, ensure_ascii=False), pay_order_no),
        )

    def _execute(
        self, order: Order, key: str, value: Any, *, source: str, scenario: str | None
    ) -> None:
        if key in ACTIONS:
            options: dict[str, Any] = dict(value or {})
            pay_mode = options.pop("pay_mode", None)
            if key == "expire" and order.status == OrderStatus.EXPIRED:
                return  # already expired by its own clock: the step's goal holds
            if scenario is not None:
                options["scenario"] = scenario
            self.engine.apply(
                order.pay_order_no, key, pay_mode=pay_mode, source=source, options=options
            )
        elif key == "notify":
            self.send_notify(order.pay_order_no, value, "scenario" if scenario else source)
        elif key == "refund_outcome" and self.refunds is not None:
            options = dict(value)
            self.refunds.arm(
                order.pay_order_no,
                Outcome(
                    str(options["result"]),
                    float(options.get("after", 0)),
                    options.get("reason"),
                ),
            )
        elif key == "fault":
            spec = dict(value)
            call = spec.pop("call", "any")
            times = int(spec.pop("times", 1))
            self.faults.arm(None if call == "create" else order.pay_order_no, call, spec, times)
        else:
            raise SandboxError("INVALID_PARAM", field="step", rule=f"unknown step {key!r}")
