"""pytest fixtures for code that talks to Lakala (registered through the ``pytest11`` entry point).

``lakala_sandbox``: a sandbox as new for every test, in-process (``InProcessTransport``, no
sockets), with a ready ``client``: built once per session (per xdist worker) and reset before
each test, which is what keeps it a few milliseconds. ``lakala_sandbox_server``: one sandbox
served by uvicorn on a free loopback port for the whole session, cleared before each test, for
code that needs a real URL.
Both expose the same helpers, all through the sandbox's own HTTP API::

    def test_checkout(lakala_sandbox):
        order = lakala_sandbox.client.create(out_order_no="A1", total_amount=100, order_info="Tea")
        lakala_sandbox.pay(order["pay_order_no"])
        assert lakala_sandbox.client.query(out_order_no="A1")["order_status"] == "2"

``@pytest.mark.lakala_sandbox(seed=1, signature="warn", ...)`` gives the in-process one settings
(any field of ``sandbox.Settings``); an unknown option or a bad value stops the run as a
pytest usage error naming the test and the option.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # the sandbox itself is imported when a fixture is used, not at pytest start
    import httpx

    from sandbox.core.clock import Clock

MARKER = "lakala_sandbox"
IN_PROCESS_URL = "http://lakala-sandbox.test"


class SandboxClock:
    """The sandbox's virtual clock, driven through ``/sandbox/api/clock``."""

    def __init__(self, http: httpx.Client) -> None:
        self._http = http

    def advance(self, seconds: float) -> str:
        """Move the clock forward (due steps and notify retries run); returns the new now."""
        return str(
            _ok(self._http.post("/sandbox/api/clock/advance", json={"seconds": seconds}))["clock"][
                "now"
            ]
        )

    def set(self, time14: str) -> str:
        return str(
            _ok(self._http.post("/sandbox/api/clock/set", json={"time": time14}))["clock"]["now"]
        )

    def reset(self) -> str:
        return str(_ok(self._http.post("/sandbox/api/clock/reset"))["clock"]["now"])

    def now(self) -> str:
        return str(_ok(self._http.get("/sandbox/api/clock"))["clock"]["now"])


class LakalaSandbox:
    """One sandbox as a test sees it.

    ``client`` (a ``LakalaClient`` for the v3 API), ``http`` (an ``httpx.Client`` on the sandbox,
    for the seed's ``/api/v1`` API and the admin API), ``base_url``, ``clock``
    (``advance(seconds)``), ``use_scenario(name)``, ``orders()`` / ``order(no)``, ``act(no,
    action)`` / ``pay(no)``, ``notifies(no)``: the notifies the sandbox sent, and
    ``wait_for_notifies(no)``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Clock | None = None,
        app: Any = None,
    ) -> None:
        import httpx

        from sandbox.client.clients import LakalaClient
        from sandbox.wire.tls import verify_for

        self.base_url = base_url
        self.app = app
        self.http = httpx.Client(
            base_url=base_url, transport=transport, timeout=30, verify=verify_for(transport)
        )
        self.client = LakalaClient(base_url=base_url, transport=transport, clock=clock)
        self.clock = SandboxClock(self.http)

    @property
    def sandbox(self) -> Any:
        """The in-process ``Sandbox`` (engine, store, keys); None for a served one."""
        return self.app.state.sandbox if self.app is not None else None

    def use_scenario(self, name: str) -> dict[str, Any]:
        """Orders created from now on follow scenario ``name`` (unless they match another)."""
        return _ok(self.http.put("/sandbox/api/scenarios/default", json={"name": name}))

    def orders(self) -> list[dict[str, Any]]:
        return list(_ok(self.http.get("/sandbox/api/orders", params={"limit": 1000}))["orders"])

    def order(self, pay_order_no: str) -> dict[str, Any]:
        return dict(_ok(self.http.get(f"/sandbox/api/orders/{pay_order_no}"))["order"])

    def act(self, pay_order_no: str, action: str, **options: Any) -> dict[str, Any]:
        """``paying``, ``pay``, ``fail``, ``cancel``, ``close``, ``expire`` or ``refund``; options
        such as ``pay_mode="WECHAT"`` or ``notify="never"``."""
        return dict(
            _ok(self.http.post(f"/sandbox/api/orders/{pay_order_no}/{action}", json=options))[
                "order"
            ]
        )

    def pay(self, pay_order_no: str, **options: Any) -> dict[str, Any]:
        return self.act(pay_order_no, "pay", **options)

    def notifies(self, pay_order_no: str | None = None) -> list[dict[str, Any]]:
        """Notify attempts (oldest first) of one order, or of every order."""
        numbers = [pay_order_no] if pay_order_no else [o["pay_order_no"] for o in self.orders()]
        return [
            attempt
            for no in numbers
            for attempt in _ok(self.http.get(f"/sandbox/api/orders/{no}/notifies"))["notifies"]
        ]

    def wait_for_notifies(
        self, pay_order_no: str, count: int = 1, *, state: str = "delivered", timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        """Poll (bounded) until ``count`` attempts of the order are in ``state``.

        Fails at once (AssertionError) when that can no longer happen by itself: a notify ended
        otherwise (skipped, given up, failed for good), nothing is pending and the order's
        scenario has no step left. TimeoutError after ``timeout`` seconds otherwise.
        """
        deadline = time.monotonic() + timeout
        while True:
            attempts = self.notifies(pay_order_no)
            found = [a for a in attempts if a["state"] == state]
            if len(found) >= count:
                return found
            if _stuck(attempts, state) and not self._scenario_pending(pay_order_no):
                # read again after the scenario: a step it ran meanwhile has journaled its notify
                attempts = self.notifies(pay_order_no)
                found = [a for a in attempts if a["state"] == state]
                ended = _stuck(attempts, state)
                if ended and len(found) < count:
                    raise AssertionError(
                        f"{len(found)} of {count} notifies of {pay_order_no} {state}, and no "
                        "more will be: " + "; ".join(map(_describe, ended))
                    )
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                wanted = f"{len(found)} of {count} notifies of {pay_order_no} {state}"
                journal = (
                    "; ".join(_describe(a, attempts) for a in _latest(attempts))
                    or "nothing journaled"
                )
                raise TimeoutError(f"{wanted} within {timeout:g}s ({journal})")
            time.sleep(0.05)

    def _scenario_pending(self, pay_order_no: str) -> bool:
        """Whether the order's scenario still has a step to run (which may notify)."""
        run = _ok(self.http.get(f"/sandbox/api/orders/{pay_order_no}/scenario"))["run"]
        return bool(run) and run.get("next_step") is not None

    def reset(self) -> None:
        """Forget every order, put the clock back."""
        _ok(self.http.post("/sandbox/api/reset"))
        self.clock.reset()

    def close(self) -> None:
        self.client.shutdown()
        self.http.close()


def _latest(attempts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each notify's latest attempt (its state is the notify's), in the order they were made."""
    latest: dict[int, dict[str, Any]] = {}
    for attempt in attempts:
        held = latest.get(attempt["sequence"])
        if held is None or attempt["attempt"] > held["attempt"]:
            latest[attempt["sequence"]] = attempt
    return [latest[n] for n in sorted(latest)]


def _stuck(attempts: list[dict[str, Any]], state: str) -> list[dict[str, Any]]:
    """The notifies that are over without reaching ``state`` (skipped, given up, failed for
    good), when nothing else is pending: then nothing more is sent by itself. Empty otherwise.
    (A failed attempt with more to come has a pending one after it.)"""
    if any(a["state"] == "pending" for a in attempts):
        return []
    return [a for a in _latest(attempts) if a["state"] != state]


def _describe(attempt: dict[str, Any], attempts: Sequence[dict[str, Any]] = ()) -> str:
    """One notify's state in words; a pending retry also quotes why the attempt before it failed,
    as journaled (the answer was not the ack, the handler timed out, ...)."""
    what = f"notify {attempt['sequence']} ({attempt['kind']}) {attempt['state']}"
    if attempt["state"] == "pending":
        what += f", due at {attempt['scheduled_at']}"
        earlier = [
            a
            for a in attempts
            if a["sequence"] == attempt["sequence"]
            and a["attempt"] < attempt["attempt"]
            and a["state"] != "pending"
        ]
        if earlier:
            last = max(earlier, key=lambda a: a["attempt"])
            reason = last.get("error") or f"answered {last.get('response_status')}"
            what += f"; attempt {last['attempt']} {last['state']}: {reason}"
    elif attempt["attempt"] > 1:
        what += f" after {attempt['attempt']} attempts"
    return what + (f": {attempt['error']}" if attempt.get("error") else "")


def _ok(response: httpx.Response) -> Any:
    if response.status_code != 200:
        raise AssertionError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:300]}"
        )
    return response.json()


class ServerThread:
    """uvicorn serving ``app`` on a free 127.0.0.1 port from a thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        from sandbox.server import serving

        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port = int(self._socket.getsockname()[1])
        config = serving.config(app, log_level="warning", ws="none", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name="lakala-sandbox-server",
            daemon=True,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._socket.close()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**settings): settings for the lakala_sandbox "
        "fixture's sandbox (seed, signature, default_scenario, …)",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A marker with a bad option stops the run before any test, naming the test and option."""
    for item in items:
        marker = item.get_closest_marker(MARKER)
        if marker is not None:
            problem = marker_problem(marker)
            if problem:
                raise pytest.UsageError(f"{item.nodeid}: {problem}")


def marker_options() -> list[str]:
    """What ``@pytest.mark.lakala_sandbox(...)`` takes: the sandbox's settings."""
    import dataclasses

    from sandbox.core.settings import Settings

    return [f.name for f in dataclasses.fields(Settings)]


def marker_problem(marker: pytest.Mark) -> str | None:
    """What is wrong with the marker's options, or None."""
    import difflib

    from sandbox.core.settings import Settings

    given = [repr(a) for a in marker.args] + [f"{k}={v!r}" for k, v in marker.kwargs.items()]
    shown = f"@pytest.mark.{MARKER}({', '.join(given)})"
    valid = marker_options()
    if marker.args:
        return f'{shown}: takes settings as keywords only, such as signature="warn"'
    unknown = [name for name in marker.kwargs if name not in valid]
    if unknown:
        guesses = [
            f"{name} (did you mean {close[0]}?)" if close else name
            for name in unknown
            for close in [difflib.get_close_matches(name, valid, n=1)]
        ]
        return (
            f"{shown}: unknown option{'s' if len(unknown) > 1 else ''} {', '.join(guesses)}. "
            f"Its options are the sandbox's settings: {', '.join(valid)}"
        )
    try:
        Settings(**{"data_dir": ":memory:", **marker.kwargs})
    except (ValueError, TypeError) as exc:
        return f"{shown}: {exc}"
    return None


class _InProcess:
    """One in-process sandbox, its transport and its handle, kept for the session."""

    def __init__(self, options: dict[str, Any]) -> None:
        from sandbox.client.transport import InProcessTransport
        from sandbox.core.settings import Settings
        from sandbox.server.app import create_app

        self.app = create_app(Settings(**options))
        self.transport = InProcessTransport(self.app)
        self.handle = LakalaSandbox(
            IN_PROCESS_URL,
            transport=self.transport,
            clock=self.app.state.sandbox.clock,
            app=self.app,
        )

    def fresh(self) -> LakalaSandbox:
        """The handle, on a sandbox as new: every trace of the last test is gone."""
        self.app.state.sandbox.reset()
        self.handle.http.cookies.clear()
        self.handle.client._core.forget()  # (what it remembered of the last test's orders)
        return self.handle

    def close(self) -> None:
        self.handle.close()
        self.app.state.sandbox.close()
        self.transport.close()


class _Sandboxes:
    """The session's in-process sandboxes (each xdist worker is a session of its own), one per
    distinct marker settings, the least recently used closed past ``KEEP``."""

    KEEP = 4

    def __init__(self) -> None:
        self._kept: dict[str, _InProcess] = {}

    def get(self, options: dict[str, Any]) -> _InProcess:
        key = repr(sorted(options.items()))
        kept = self._kept.pop(key, None)
        if kept is None:
            kept = _InProcess(options)
            while len(self._kept) >= self.KEEP:
                self._kept.pop(next(iter(self._kept))).close()
        self._kept[key] = kept  # (last: the most recently used)
        return kept

    def drop(self, kept: _InProcess) -> None:
        """A sandbox that could not be reset is not used again."""
        for key, value in list(self._kept.items()):
            if value is kept:
                del self._kept[key]
        kept.close()

    def close(self) -> None:
        while self._kept:
            self._kept.popitem()[1].close()


@pytest.fixture(scope="session")
def _lakala_sandboxes() -> Iterator[_Sandboxes]:
    sandboxes = _Sandboxes()
    try:
        yield sandboxes
    finally:
        sandboxes.close()


@pytest.fixture
def lakala_sandbox(
    request: pytest.FixtureRequest, _lakala_sandboxes: _Sandboxes
) -> Iterator[LakalaSandbox]:
    """An in-process sandbox (in-memory, seed 1) with a ready client, as new for every test.

    One sandbox per session (per xdist worker) and per distinct marker settings is built once
    and reset before each test (``Sandbox.reset``): no orders, notifies, armed faults or scenario
    runs of another test, the clock at its start, the default scenario and the settings its own.
    """
    marker = request.node.get_closest_marker(MARKER)
    if marker is not None:
        problem = marker_problem(marker)  # a marker added while the test runs comes here
        if problem:
            pytest.fail(problem, pytrace=False)
    options: dict[str, Any] = {
        "data_dir": ":memory:",
        "seed": 1,
        **(marker.kwargs if marker else {}),
    }
    kept = _lakala_sandboxes.get(options)
    try:
        handle = kept.fresh()
    except Exception:
        _lakala_sandboxes.drop(kept)
        raise
    yield handle
    try:  # and again now: nothing of this test (a notify ladder, say) runs on during the next
        kept.fresh()
    except Exception:
        _lakala_sandboxes.drop(kept)
        raise


@pytest.fixture(scope="session")
def _lakala_sandbox_served() -> Iterator[ServerThread]:
    from sandbox.core.settings import Settings
    from sandbox.server.app import create_app

    app = create_app(Settings(data_dir=":memory:", seed=1))
    server = ServerThread(app).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def lakala_sandbox_server(_lakala_sandbox_served: ServerThread) -> Iterator[LakalaSandbox]:
    """The session's served sandbox, cleared for this test; ``base_url`` is a real URL."""
    handle = LakalaSandbox(_lakala_sandbox_served.url)
    default = _ok(handle.http.get("/sandbox/api/scenarios"))["default"]
    handle.reset()
    try:
        yield handle
    finally:
        handle.use_scenario(default)
        handle.close()
