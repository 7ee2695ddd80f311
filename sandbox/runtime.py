"""The parts one sandbox is made of, built once from its settings and shared by every surface."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from starlette.requests import Request

from sandbox.clock import Clock
from sandbox.config import Settings
from sandbox.engine import Engine
from sandbox.errors import SandboxError
from sandbox.ids import Ids
from sandbox.keys import KeyStore
from sandbox.notifier import Notifier
from sandbox.resources import schemas_dir
from sandbox.runner import Scenarios
from sandbox.scheduler import Scheduler
from sandbox.schemas import Schemas
from sandbox.store import Store
from sandbox.timekeeper import TimeKeeper

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
        # scenarios and the notify outbox, run on the clock by one lazily started worker
        self.scheduler = Scheduler(self.clock)
        self.scenarios = Scenarios(self)
        self.notifier = Notifier(self)
        self.timekeeper = TimeKeeper(self)
        self.scheduler.add(self.scenarios)
        self.scheduler.add(self.notifier)
        self.scheduler.wake_if_pending()

    def start(self) -> None:
        """Start background work now (the app's lifespan, on the server's event loop, which
        notifies are then sent from); in-process it starts when needed."""
        try:
            self.notifier.attach(asyncio.get_running_loop())
        except RuntimeError:  # not called from a loop: the courier starts its own when needed
            pass
        self.scheduler.start()
        threading.Thread(target=self.ids.warm, name="lakala-sandbox-warm", daemon=True).start()

    def close(self) -> None:
        """Stop background work, letting deliveries in flight finish (bounded by their timeout)."""
        self.scheduler.stop(self.settings.notify_timeout + 1)

    def base_url(self, request: Request) -> str:
        """Where links (``counter_url``) point: the configured public URL or the host called."""
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/")
        return str(request.base_url).rstrip("/")

    def check_outgoing(self, name: str, body: Any) -> None:
        """In strict-responses mode, refuse to send what breaks our own schema."""
        if not self.settings.strict_responses:
            return
        problems = self.schemas.problems(name, body)
        if problems:
            raise SandboxError("INTERNAL", reason=f"response breaks schema {name}: {problems[0]}")
