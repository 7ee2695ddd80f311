"""Armed scenario faults: what the next API call(s) of an order, or the next create, must suffer.

A scenario step arms one; ``server.faults`` plays it (an error code, extra latency, an HTTP 5xx
or a dropped connection) when the call comes.
"""

from __future__ import annotations

import json
from typing import Any

from sandbox.core.store import Store


class Faults:
    def __init__(self, store: Store) -> None:
        self.store = store
        # True once a read found none armed, until the next arm: nearly every call of nearly
        # every sandbox then skips even the read (deleting, the only other change, arms none)
        self._none_armed = False

    def arm(
        self, pay_order_no: str | None, call: str, spec: dict[str, Any], times: int = 1
    ) -> None:
        """``pay_order_no`` None with ``call="create"``: the next create of any order."""
        with self.store.lock:  # (with any_armed's read and its verdict, not between them)
            self._none_armed = False
            self.store.execute(
                "INSERT INTO scenario_faults (pay_order_no, call, spec, remaining) "
                "VALUES (?, ?, ?, ?)",
                (pay_order_no, call, json.dumps(spec, ensure_ascii=False), times),
            )

    def any_armed(self) -> bool:
        """Whether ``take`` may find one, so that the calls of a sandbox with no fault armed
        (nearly all of them) skip the write transaction it needs."""
        if self._none_armed:
            return False
        with self.store.lock:
            armed = bool(
                self.store.execute("SELECT 1 FROM scenario_faults WHERE remaining > 0 LIMIT 1")
            )
            self._none_armed = not armed
        return armed

    def take(self, pay_order_no: str | None, operation: str) -> dict[str, Any] | None:
        """Use up one armed fault for this call, if any."""
        calls = ("create",) if pay_order_no is None else (operation, "any")
        with self.store.transaction() as conn:
            row = conn.execute(
                "SELECT id, spec, remaining FROM scenario_faults WHERE pay_order_no IS ? "
                f"AND call IN ({','.join('?' * len(calls))}) AND remaining > 0 ORDER BY id LIMIT 1",
                (pay_order_no, *calls),
            ).fetchone()
            if row is None:
                return None
            if row["remaining"] > 1:
                conn.execute(
                    "UPDATE scenario_faults SET remaining = remaining - 1 WHERE id = ?",
                    (row["id"],),
                )
            else:
                conn.execute("DELETE FROM scenario_faults WHERE id = ?", (row["id"],))
        return dict(json.loads(row["spec"]))
