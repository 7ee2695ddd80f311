"""The parts one sandbox is made of, built once from its settings and shared by every surface."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sandbox.core.clock import Clock
from sandbox.core.engine import Engine
from sandbox.core.ids import Ids
from sandbox.core.keys import KeyStore
from sandbox.core.refunds import RefundBook, RefundSettler
from sandbox.core.scheduler import Scheduler
from sandbox.core.settings import Settings
from sandbox.core.store import Store
from sandbox.notify.notifier import Notifier
from sandbox.scenarios.faults import Faults
from sandbox.scenarios.files import load_catalog
from sandbox.scenarios.runner import ScenarioRunner, fragment_problems
from sandbox.scenarios.timekeeper import TimeKeeper
from sandbox.wire.resources import scenarios_dir, schemas_dir
from sandbox.wire.schemas import Schemas

DB_FILE = "sandbox.sqlite3"


class Sandbox:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        start = None
        self.clock = Clock(tz=settings.timezone, speed=settings.clock_speed)
        if settings.clock_start:
            try:
                start = self.clock.parse(settings.clock_start)
            except ValueError as exc:
                raise ValueError(f"clock_start must be a yyyyMMddHHmmss time ({exc})") from None
            if not self.clock.in_range(start):
                raise ValueError(
                    f"clock_start {settings.clock_start} is outside the years 1970 to 9998"
                )
            self.clock = Clock(tz=settings.timezone, speed=settings.clock_speed, start=start)
        data_dir: Path | None = None if settings.in_memory else settings.data_path
        self.store = Store(":memory:" if data_dir is None else data_dir / DB_FILE)
        try:
            self._assemble(settings, data_dir)
        except BaseException:  # a sandbox that could not be made keeps no database open
            self.store.close()
            raise

    def _assemble(self, settings: Settings, data_dir: Path | None) -> None:
        """Everything around the store, from the keys to the scheduler's services."""
        self.keys = KeyStore.load(
            data_dir,
            appid=settings.appid,
            serial_no=settings.serial_no,
            apps_file=settings.apps_file,
        )
        self.schemas = Schemas(schemas_dir(), self.clock)
        pay_modes = list(self.schemas.documents["common"]["$defs"]["pay_mode"]["enum"])
        self.ids = Ids(settings.seed)
        self.engine = Engine(self.store, self.clock, self.ids, pay_modes)
        self.refunds = RefundBook(self.store)
        # scenarios and the notify outbox, run on the clock by one lazily started worker
        self.scheduler = Scheduler(self.clock)
        self.notifier = Notifier(
            store=self.store,
            engine=self.engine,
            clock=self.clock,
            scheduler=self.scheduler,
            keys=self.keys,
            schemas=self.schemas,
            settings=settings,
            policy_problems=fragment_problems(self.schemas, "notify_policy"),
        )
        self.faults = Faults(self.store)
        self.runner = ScenarioRunner(
            store=self.store,
            engine=self.engine,
            clock=self.clock,
            schemas=self.schemas,
            catalog=load_catalog(
                settings.scenarios_dir, scenarios_dir(), settings.default_scenario
            ),
            default=settings.default_scenario,
            faults=self.faults,
            scheduler=self.scheduler,
            send_notify=lambda pay_order_no, policy, kind: self.notifier.send(
                pay_order_no, policy, kind=kind
            ),
            active=settings.mode != "real",
            refunds=self.refunds,
        )
        self.refund_settler = RefundSettler(self.store, self.engine)
        self.timekeeper = TimeKeeper(
            store=self.store,
            clock=self.clock,
            engine=self.engine,
            runner=self.runner,
            scheduler=self.scheduler,
            other_due=[self.notifier.next_due, self.refund_settler.next_due],
        )
        self.scheduler.add(self.runner)
        self.scheduler.add(self.notifier)
        self.scheduler.add(self.refund_settler)
        # what reset() puts back: listeners added later (by a test, say) go with it
        self._engine_listeners = list(self.engine.listeners)
        self._clock_listeners = self.clock.listeners()
        self.scheduler.wake_if_pending()

    def start(self) -> None:
        """Start background work now (the app's lifespan, on the server's event loop, which
        notifies are then sent from); in-process it starts when needed."""
        try:
            self.notifier.attach(asyncio.get_running_loop())
        except RuntimeError:  # not called from a loop: the courier starts its own when needed
            pass
        self.scheduler.start()
        # the payer-name generator, before the first pay: now if orders are waiting, else once
        # the first is made (a start-up that pays nothing for what it may never need)
        if self.engine.has_orders():
            self.ids.warm_soon()
        else:
            self.ids.warm_at_first_number()

    def close(self) -> None:
        """Stop background work, letting deliveries in flight finish (bounded by their timeout),
        then close the store: its files are let go (a data directory can be removed, on any
        system), and nothing is left for the garbage collector to find open. A closed sandbox is
        not used again; closing it again does nothing."""
        self.scheduler.stop(self.settings.notify_timeout + 1)
        self.store.close()

    def reset(self) -> None:
        """Back to what a fresh sandbox of the same settings starts as, keeping what is costly
        to build (schemas, keys, the scenario catalog): every order, trade, scenario run, armed
        fault, notify and journaled attempt is gone (their numbering starts again), the clock is
        at its start with its configured speed, the seeded numbers start over and the default
        scenario is the configured one. Deliveries in flight are let finish as ``close`` does,
        then the sandbox works on as before (on the server's loop if it had one)."""
        loop = self.notifier.loop
        self.scheduler.stop(self.settings.notify_timeout + 1)
        self.notifier.forget()
        self.store.clear_all()
        self.engine.listeners[:] = self._engine_listeners
        self.clock.keep_listeners(self._clock_listeners)
        self.clock.set_speed(self.settings.clock_speed)
        self.clock.reset()
        self.ids.reset()
        self.runner.default = self.settings.default_scenario
        self.scheduler.resume()
        if loop is not None and loop.is_running():
            self.notifier.attach(loop)

    def check_outgoing(self, name: str, body: Any) -> None:
        """In strict-responses mode, refuse to send what breaks our own schema."""
        if self.settings.strict_responses:
            self.schemas.refuse_broken(name, body)
