"""Signed notifies to the merchant's ``notify_url``, through a durable outbox in SQLite.

Each notify (one per notifiable change, or per copy) is a row in ``notifies``; each try to send
it is a row in ``notify_attempts``, written before it is sent (with the exact headers, body and
signature base string) and updated after (status, answer, latency, error). Anything but the
dialect's success ack is retried on the ladder (Lakala's 1s, 5s, 5s, 10s, 3m, 10m, 20m, 30m, 1h,
2h after the previous attempt), measured on the order's clock from the attempt's scheduled time,
so a clock jump runs the ladder as it would have happened; after the last it is ``given_up``.
Deliveries are tasks on the courier's event loop (the server's own under uvicorn, else a thread
of the courier's; see ``sandbox.notify.courier``), signed on the signing threads, at most
``MAX_IN_FLIGHT`` at once (``MAX_PER_RECEIVER`` of them to any one receiver) and one at a time
per order, each bounded by a timeout, so a slow receiver never holds up another order nor another
receiver, and never an API call. A restart
resumes every ``pending`` attempt (one cut off in flight is sent again).

Which changes notify: pay (2), fail (3), refund (6) and cancel (5); paying (1), close (7) and
expire (4) do not (Lakala reports outcomes; the merchant asked for the close and set the expiry).
A v3 notify must carry a trade (``order_trade_info``), so cancelling a v3 order nobody tried to
pay is journaled as ``skipped`` with that reason. A scenario's ``notify`` step or
``POST /sandbox/api/orders/{no}/notify`` sends the current state whatever it is.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from sandbox.core.clock import Clock
from sandbox.core.engine import Change, Engine, Order, Trade
from sandbox.core.keys import KeyStore
from sandbox.core.scheduler import DUE_SLACK, Scheduler
from sandbox.core.settings import Settings
from sandbox.core.store import Store
from sandbox.notify import bodies as notify_bodies
from sandbox.notify.courier import REDIRECTS, Courier
from sandbox.wire import signing
from sandbox.wire.errors import SandboxError
from sandbox.wire.schemas import Schemas
from sandbox.wire.vocabulary import NOTIFIED_ACTIONS

log = logging.getLogger("lakala_sandbox.notifier")


MAX_ANSWER_BYTES = 64 * 1024
# Deliveries in flight at once. Beyond it attempts wait their turn in the outbox.
MAX_IN_FLIGHT = 64
# Of those, what one receiver (scheme, host and port of its notify_url) may hold: a receiver that
# never answers keeps its share busy until each attempt times out, never every slot.
MAX_PER_RECEIVER = 16
POLICY_WORDS: dict[str, dict[str, Any]] = {
    "now": {},
    "never": {"send": False},
    "twice": {"copies": 2},
    "bad_signature": {"signature": "bad"},
    "stale_timestamp": {"signature": "stale"},
    "tampered_amount": {"tamper": "amount"},
}


@dataclass(frozen=True)
class Policy:
    """How one change is notified: when, how often, and whether deliberately broken."""

    send: bool = True
    after: float = 0.0
    copies: int = 1
    signature: str = "valid"
    tamper: str | None = None

    @classmethod
    def parse(cls, value: Any, problems: Any = None) -> Policy:
        """From a scenario/page value; INVALID_PARAM (field ``notify``) if the schema refuses it."""
        if value is None:
            return cls()
        found = problems(value) if problems is not None else []
        if found:
            raise SandboxError("INVALID_PARAM", field="notify", rule=found[0])
        if isinstance(value, str):
            if value not in POLICY_WORDS:
                raise SandboxError(
                    "INVALID_PARAM",
                    field="notify",
                    rule="must be one of " + ", ".join(POLICY_WORDS),
                )
            return cls(**POLICY_WORDS[value])
        if not isinstance(value, dict):
            raise SandboxError("INVALID_PARAM", field="notify", rule="must be a word or a mapping")
        return cls(
            after=float(value.get("after", 0)),
            copies=int(value.get("copies", 1)),
            signature=str(value.get("signature", "valid")),
            tamper=value.get("tamper"),
        )

    def dumps(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def loads(cls, text: str) -> Policy:
        return cls(**json.loads(text))


class Notifier:
    """``sb.notifier``: ``attempts(no)``, ``send_now(no)``, ``replay(id)``, ``drain()``.

    ``policy_problems`` checks a notify policy (the scenario schema's ``notify_policy``);
    ``settings`` gives the ladder, timeout, allowed hosts, the merchant's fields and strictness.
    """

    def __init__(
        self,
        *,
        store: Store,
        engine: Engine,
        clock: Clock,
        scheduler: Scheduler,
        keys: KeyStore,
        schemas: Schemas,
        settings: Settings,
        policy_problems: Callable[[Any], list[str]],
    ) -> None:
        self.store = store
        self.engine = engine
        self.clock = clock
        self.scheduler = scheduler
        self.keys = keys
        self.schemas = schemas
        self.settings = settings
        self._policy_problems = policy_problems
        self._fill_receivers()
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._inflight: dict[int, str] = {}
        self._held: dict[int, str] = {}  # attempt in flight -> its receiver
        self._courier = Courier(max_idle_per_receiver=MAX_IN_FLIGHT)
        self.loop: asyncio.AbstractEventLoop | None = None  # the server's, once attached
        self._word_policies: dict[str | None, Policy] = {}
        self._verdicts: dict[tuple[str, int | None, str | None], str | None] = {}
        engine.listeners.append(self._on_change)

    # -- what the admin API and the page read ----------------------------------------------
    def attempts(self, pay_order_no: str) -> list[dict[str, Any]]:
        rows = self.store.execute(
            _SELECT + " WHERE a.pay_order_no = ? ORDER BY a.id", (pay_order_no,)
        )
        return [self._view(r) for r in rows]

    def attempt(self, attempt_id: int) -> dict[str, Any]:
        if not 0 <= attempt_id < 2**63:  # SQLite's integers; a larger one is no attempt
            raise SandboxError("NOTIFY_NOT_FOUND", attempt_id=attempt_id)
        rows = self.store.execute(_SELECT + " WHERE a.id = ?", (attempt_id,))
        if not rows:
            raise SandboxError("NOTIFY_NOT_FOUND", attempt_id=attempt_id)
        return self._view(rows[0])

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every notify (and scenario step) due on the clock has been dealt with."""
        return self.scheduler.drain(timeout)

    # -- sending ---------------------------------------------------------------------------
    def send_now(self, pay_order_no: str, policy: Any = "now") -> dict[str, Any]:
        """A fresh notify of the order's current state (its newest trade), with the ladder."""
        return self.send(pay_order_no, policy, kind="manual")[0]

    def send(self, pay_order_no: str, policy: Any, *, kind: str) -> list[dict[str, Any]]:
        order = self.engine.get(pay_order_no)
        if not order.data.get("notify_url"):
            raise SandboxError("NO_NOTIFY_URL", pay_order_no=pay_order_no)
        trade = order.trades[0] if order.trades else None
        if trade is None and order.dialect != "v1":
            raise SandboxError("NOTHING_TO_NOTIFY", pay_order_no=pay_order_no)
        ids = self._enqueue(order, trade, self.parse_policy(policy), kind=kind)
        return [self.attempt(i) for i in ids]

    def replay(self, attempt_id: int) -> dict[str, Any]:
        """The body of a past attempt's notify again, freshly and correctly signed, sent once."""
        old = self.attempt(attempt_id)
        row = self.store.execute(
            "SELECT n.* FROM notifies n JOIN notify_attempts a "
            "ON a.notify_id = n.id WHERE a.id = ?",
            (attempt_id,),
        )[0]
        order = self.engine.get(old["pay_order_no"])
        if not row["url"]:
            raise SandboxError("NO_NOTIFY_URL", pay_order_no=order.pay_order_no)
        ids = self._insert(
            order, json.loads(row["body"]), Policy(), kind="replay", retry=False, url=row["url"]
        )
        return self.attempt(ids[0])

    def parse_policy(self, value: Any) -> Policy:
        word = value is None or isinstance(value, str)
        if word and value in self._word_policies:
            return self._word_policies[value]  # every pay checked "now" against the schema
        policy = Policy.parse(value, self._policy_problems)
        if word:
            self._word_policies[value] = policy  # (Policy is frozen: one object serves all)
        return policy

    def _on_change(self, change: Change) -> None:
        if change.action not in NOTIFIED_ACTIONS:
            return
        try:
            policy = self.parse_policy(change.options.get("notify", "now"))
        except SandboxError as error:
            self._record_skip(change.order, change.action, error.message)
            return
        if change.trade is None and change.order.dialect != "v1":
            self._record_skip(
                change.order,
                change.action,
                f"a v3 notify reports a trade (order_trade_info) and this {change.action} has none",
            )
            return
        try:
            self._enqueue(
                change.order,
                change.trade,
                policy,
                kind=change.action,
                reason=change.options.get("reason"),
            )
        except Exception:  # a listener must not undo the change it hears about
            log.exception("cannot queue the notify for %s", change.order.pay_order_no)

    def _enqueue(
        self,
        order: Order,
        trade: Trade | None,
        policy: Policy,
        *,
        kind: str,
        reason: str | None = None,
    ) -> list[int]:
        now14 = self.clock.format(self.engine.now_for(order))
        body = notify_bodies.build(self.settings, order, trade, now14, reason=reason)
        if self.settings.strict_responses:
            self.schemas.refuse_broken(notify_bodies.schema_name(order.dialect), body)
        return self._insert(
            order, body, policy, kind=kind, retry=True, url=order.data.get("notify_url")
        )

    def _insert(
        self,
        order: Order,
        body: dict[str, Any],
        policy: Policy,
        *,
        kind: str,
        retry: bool,
        url: str | None,
        skip: str | None = None,
    ) -> list[int]:
        now = self.engine.now_for(order)
        skip = skip or self._skip_reason(policy, url)
        ids: list[int] = []
        with self.store.transaction() as conn:
            for _ in range(policy.copies if skip is None else 1):
                sequence = conn.execute(
                    "SELECT COALESCE(MAX(sequence), 0) + 1 FROM notifies WHERE pay_order_no = ?",
                    (order.pay_order_no,),
                ).fetchone()[0]
                notify_id = conn.execute(
                    "INSERT INTO notifies (pay_order_no, sequence, kind, dialect, url, receiver, "
                    "body, policy, retry, created_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        order.pay_order_no,
                        sequence,
                        kind,
                        order.dialect,
                        url,
                        receiver_of(url) if url else None,
                        json.dumps(body, ensure_ascii=False),
                        policy.dumps(),
                        int(retry),
                        now,
                    ),
                ).lastrowid
                attempt_id = conn.execute(
                    "INSERT INTO notify_attempts (notify_id, pay_order_no, attempt, state, "
                    "due_ts, error) VALUES (?, ?, 1, ?, ?, ?)",
                    (
                        notify_id,
                        order.pay_order_no,
                        "pending" if skip is None else "skipped",
                        now + policy.after,
                        skip,
                    ),
                ).lastrowid
                assert attempt_id is not None
                ids.append(attempt_id)
        if skip is None:
            self.scheduler.wake()
        return ids

    def _record_skip(self, order: Order, kind: str, why: str) -> None:
        body = {"pay_order_no": order.pay_order_no, "order_status": str(order.status)}
        self._insert(
            order,
            body,
            Policy(send=False),
            kind=kind,
            retry=False,
            url=order.data.get("notify_url"),
            skip=why,
        )

    def _skip_reason(self, policy: Policy, url: str | None) -> str | None:
        if not policy.send:
            return "the notify policy is never"
        if not url:
            return "the order has no notify_url"
        try:
            host = urlsplit(url).hostname or ""
        except ValueError:  # stored before create checked that it parses
            return f"notify_url {url[:100]!r} is not a URL"
        hosts = self.settings.notify_hosts
        if hosts and host not in hosts:
            return f"notify_url host {host!r} is not in notify_hosts ({', '.join(hosts)})"
        return None

    # -- the scheduler's job ---------------------------------------------------------------
    def run_due(self) -> None:
        now = self.clock.timestamp()
        with self._lock:
            free = MAX_IN_FLIGHT - len(self._inflight)
            busy = sorted(set(self._inflight.values()))
            full = self._full_receivers()
        if free <= 0:
            return
        # only as many as could start now: with a thousand notifies due, every pass reading them
        # all would make the fan-out quadratic
        rows = self.store.execute(
            "SELECT a.*, n.url, n.receiver, n.body, n.policy, n.retry, n.dialect, o.clock_offset "
            "FROM notify_attempts a JOIN notifies n ON n.id = a.notify_id JOIN orders o "
            "ON o.pay_order_no = a.pay_order_no WHERE a.state = 'pending' "
            "AND a.due_ts <= ? + o.clock_offset"
            + _not_in("a.pay_order_no", busy)
            + _not_in("COALESCE(n.receiver, '')", full)
            + " ORDER BY a.due_ts - o.clock_offset, a.id LIMIT ?",
            (now + DUE_SLACK, *busy, *full, free),
        )
        with self._lock:
            busy_orders = set(self._inflight.values())
            held = self._holdings()
            for row in rows:
                if len(self._inflight) >= MAX_IN_FLIGHT:
                    break  # the next finished delivery wakes the scheduler again
                if row["id"] in self._inflight or row["pay_order_no"] in busy_orders:
                    continue  # one delivery at a time per order keeps its notifies in order
                receiver = row["receiver"] or ""
                if held.get(receiver, 0) >= MAX_PER_RECEIVER:
                    continue  # its share is taken: the next pass leaves it out of the read
                self._inflight[row["id"]] = row["pay_order_no"]
                self._held[row["id"]] = receiver
                held[receiver] = held.get(receiver, 0) + 1
                busy_orders.add(row["pay_order_no"])
                self._courier.submit(functools.partial(self._deliver, dict(row)))

    def next_due(self) -> float | None:
        with self._lock:
            if len(self._inflight) >= MAX_IN_FLIGHT:
                return None  # full: a finished delivery wakes the scheduler
            busy = sorted(set(self._inflight.values()))
            full = self._full_receivers()
        rows = self.store.execute(
            "SELECT MIN(a.due_ts - o.clock_offset) AS due FROM notify_attempts a JOIN orders o "
            "ON o.pay_order_no = a.pay_order_no"
            + (" JOIN notifies n ON n.id = a.notify_id" if full else "")
            + " WHERE a.state = 'pending'"
            + _not_in("a.pay_order_no", busy)
            + _not_in("COALESCE(n.receiver, '')", full),
            (*busy, *full),
        )
        due = rows[0]["due"]
        return None if due is None else float(due)

    def _holdings(self) -> dict[str, int]:
        """Deliveries in flight per receiver (under ``_lock``)."""
        held: dict[str, int] = {}
        for receiver in self._held.values():
            held[receiver] = held.get(receiver, 0) + 1
        return held

    def _full_receivers(self) -> list[str]:
        """The receivers holding all the slots one may (under ``_lock``)."""
        return sorted(r for r, n in self._holdings().items() if n >= MAX_PER_RECEIVER)

    def _fill_receivers(self) -> None:
        """Notifies written before they named their receiver (the store's migration to version 2
        added the column) get it filled in."""
        rows = self.store.execute(
            "SELECT id, url FROM notifies WHERE receiver IS NULL AND url IS NOT NULL"
        )
        if rows:
            with self.store.transaction() as conn:
                conn.executemany(
                    "UPDATE notifies SET receiver = ? WHERE id = ?",
                    [(receiver_of(r["url"]), r["id"]) for r in rows],
                )

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver from the server's event loop (see ``sandbox.notify.courier``)."""
        self._courier.attach(loop)
        self.loop = loop

    def forget(self) -> None:
        """After ``stop``, for a sandbox reset: nothing is in flight any more."""
        with self._lock:
            self._inflight.clear()
            self._settled.notify_all()

    def busy(self) -> bool:
        with self._lock:
            return bool(self._inflight)

    def stop(self, timeout: float) -> None:
        """Let deliveries in flight finish for up to ``timeout``; any still going are cut off
        (left ``pending``, so a restart sends them again)."""
        deadline = time.monotonic() + timeout
        with self._settled:
            while self._inflight and (left := deadline - time.monotonic()) > 0:
                self._settled.wait(left)
        self._courier.stop(max(0.5, deadline - time.monotonic()))

    # -- one delivery ----------------------------------------------------------------------
    async def _deliver(self, row: dict[str, Any]) -> None:
        attempt_id = row["id"]
        try:
            await self._send(row)
        except Exception as exc:  # a bug must not leave the attempt pending forever
            log.exception("notify attempt %s failed", attempt_id)
            self.store.execute(
                "UPDATE notify_attempts SET state = 'failed', error = ? "
                "WHERE id = ? AND state = 'pending'",
                (f"internal error: {type(exc).__name__}: {exc}", attempt_id),
            )
        finally:
            with self._lock:
                self._inflight.pop(attempt_id, None)
                self._held.pop(attempt_id, None)
                self._settled.notify_all()
                # a scheduler pass reads the outbox: one per half-emptied batch, not one per
                # delivery, while a fan-out keeps the courier full (it looks again within
                # MAX_SLEEP in any case)
                look = len(self._inflight) <= MAX_IN_FLIGHT // 2
            if look:
                self.scheduler.wake()

    async def _send(self, row: dict[str, Any]) -> None:
        """One attempt, from its outbox row as ``run_due`` read it."""
        attempt_id = row["id"]
        policy = Policy.loads(row["policy"])
        headers, sent_body, signed = await asyncio.get_running_loop().run_in_executor(
            signing.executor(),
            functools.partial(
                notify_bodies.prepare,
                self.keys.platform_key,
                json.loads(row["body"]),
                signature=policy.signature,
                tamper=policy.tamper,
            ),
        )
        with self.store.transaction() as conn:
            marked = conn.execute(
                "UPDATE notify_attempts SET sent_ts = ?, request_headers = ?, request_body = ?, "
                "signed_string = ?, response_status = NULL, response_body = NULL, "
                "latency_ms = NULL, error = NULL WHERE id = ? AND state = 'pending'",
                (
                    self.clock.timestamp() + row["clock_offset"],
                    json.dumps(headers, ensure_ascii=False),
                    sent_body.decode(),
                    signed.decode("utf-8", "replace"),
                    attempt_id,
                ),
            ).rowcount
        if not marked:
            return  # forgotten by a reset meanwhile (its order too), or already dealt with
        started = time.monotonic()
        status, answer, error = await self._post(str(row["url"]), sent_body, headers)
        elapsed = time.monotonic() - started
        if error is None:
            error = self._judge(row["dialect"], status, answer)
        ladder = self.settings.notify_ladder
        attempt = int(row["attempt"])
        retry = error is not None and bool(row["retry"]) and attempt <= len(ladder)
        if error is None:
            state = "delivered"
        elif retry:
            state = "failed"
        else:
            state = "given_up" if row["retry"] else "failed"
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE notify_attempts SET state = ?, response_status = ?, "
                "response_body = ?, latency_ms = ?, error = ? WHERE id = ?",
                (state, status, answer, int(elapsed * 1000), error, attempt_id),
            )
            if retry:
                # the next place on the ladder, counted from this attempt's scheduled time
                due = float(row["due_ts"]) + elapsed * self.clock.speed + ladder[attempt - 1]
                conn.execute(
                    "INSERT INTO notify_attempts (notify_id, pay_order_no, attempt, "
                    "state, due_ts) VALUES (?, ?, ?, 'pending', ?)",
                    (row["notify_id"], row["pay_order_no"], attempt + 1, due),
                )

    async def _post(
        self, url: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int | None, str | None, str | None]:
        """(status, answer text, error): error None when an answer came that is not a redirect."""
        answer = await self._courier.post(
            url,
            body,
            headers,
            timeout=self.settings.notify_timeout,
            max_answer=MAX_ANSWER_BYTES,
        )
        if answer.status is None:
            return None, None, answer.error
        text = answer.body.decode("utf-8", "replace")
        if answer.status in REDIRECTS and answer.location is not None:
            return (
                answer.status,
                text,
                f"HTTP {answer.status} redirect to {answer.location} not followed",
            )
        return answer.status, text, None

    def _judge(self, dialect: str, status: int | None, answer: str | None) -> str | None:
        # a merchant's server answers the same bytes nearly every time: each distinct answer is
        # parsed and checked against the ack schema once
        key = (dialect, status, answer)
        if key in self._verdicts:
            return self._verdicts[key]
        verdict = notify_bodies.ack_problem(self.schemas, dialect, status, answer)
        if answer is None or len(answer) <= 1024:  # (acks are short; keep no big ones)
            if len(self._verdicts) >= 256:
                self._verdicts.clear()
            self._verdicts[key] = verdict
        return verdict

    def _view(self, row: Any) -> dict[str, Any]:
        fmt = self.clock.format
        return {
            "id": row["id"],
            "pay_order_no": row["pay_order_no"],
            "sequence": row["sequence"],
            "attempt": row["attempt"],
            "kind": row["kind"],
            "dialect": row["dialect"],
            "url": row["url"],
            "state": row["state"],
            "scheduled_at": fmt(row["due_ts"]),
            "sent_at": fmt(row["sent_ts"]) if row["sent_ts"] is not None else None,
            "policy": json.loads(row["policy"]),
            "request_headers": json.loads(row["request_headers"])
            if row["request_headers"]
            else None,
            "request_body": row["request_body"],
            "signed_string": row["signed_string"],
            "response_status": row["response_status"],
            "response_body": row["response_body"],
            "latency_ms": row["latency_ms"],
            "error": row["error"],
            "body": json.loads(row["body"]),
        }


_SELECT = (
    "SELECT a.*, n.sequence, n.kind, n.dialect, n.url, n.body, n.policy "
    "FROM notify_attempts a JOIN notifies n ON n.id = a.notify_id"
)


def receiver_of(url: str) -> str:
    """Who answers a notify_url: its scheme, host and port (``http://127.0.0.1:8000``)."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        port = parts.port or (443 if scheme == "https" else 80)
        host = (parts.hostname or "").lower()
    except ValueError:  # not a URL: it is its own receiver (its attempt fails)
        return url[:200]
    return f"{scheme}://{host}:{port}"


def _not_in(column: str, values: list[str]) -> str:
    return f" AND {column} NOT IN ({','.join('?' * len(values))})" if values else ""
