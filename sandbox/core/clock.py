"""The one clock that business times, expiry, scenario waits and the notify ladder read.

Virtual time runs from an anchor: ``virtual = anchor_virtual + (wall - anchor_wall) * speed``.
Advancing moves the anchor, so the clock keeps running afterwards at its speed; speed 0 freezes
it (only advance/set move it), which is what tests want. Listeners hear every jump, so work that
became due can run at once; ``state()``/``restore()`` let a restarted sandbox keep its time.
Signature timestamps do not use this clock: they stay wall time so freshness checks hold.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sandbox.wire.times import BEIJING, EARLIEST, FORMAT_14, LATEST, WallClock, duration_text

__all__ = ["EARLIEST", "FORMAT_14", "LATEST", "Clock", "duration_text"]


class Clock(WallClock):
    def __init__(
        self,
        *,
        tz: str = BEIJING,
        start: float | None = None,
        speed: float = 1.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        _check_speed(speed)
        super().__init__(tz=tz, wall=wall)
        self._lock = threading.Lock()
        self._start = start
        self._speed = speed
        self._anchor_wall = wall()
        self._anchor_virtual = self._anchor_wall if start is None else start
        self._advanced = 0.0
        self._listeners: list[Callable[[], None]] = []

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every advance, set, reset or speed change."""
        self._listeners.append(listener)

    def listeners(self) -> list[Callable[[], None]]:
        return list(self._listeners)

    def keep_listeners(self, listeners: list[Callable[[], None]]) -> None:
        """Hear only these from now on (the sandbox's own, without any added since)."""
        self._listeners[:] = listeners

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener()

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def advanced(self) -> float:
        """Seconds added by advance() since the last reset."""
        return self._advanced

    def timestamp(self) -> float:
        with self._lock:
            return min(
                self._anchor_virtual + (self._wall() - self._anchor_wall) * self._speed, LATEST
            )

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._anchor_virtual += seconds
            self._advanced += seconds
        self._changed()
        return self.timestamp()

    def set(self, timestamp: float) -> float:
        """Jump to an absolute time (forward or back)."""
        with self._lock:
            current = self._anchor_virtual + (self._wall() - self._anchor_wall) * self._speed
            self._advanced += timestamp - current
            self._anchor_wall = self._wall()
            self._anchor_virtual = timestamp
        self._changed()
        return timestamp

    def set_speed(self, speed: float) -> None:
        _check_speed(speed)
        with self._lock:
            now_wall = self._wall()
            self._anchor_virtual += (now_wall - self._anchor_wall) * self._speed
            self._anchor_wall = now_wall
            self._speed = speed
        self._changed()

    def reset(self) -> None:
        """Back to the start: wall time (or the configured start), speed kept."""
        with self._lock:
            self._anchor_wall = self._wall()
            self._anchor_virtual = self._anchor_wall if self._start is None else self._start
            self._advanced = 0.0
        self._changed()

    def state(self) -> dict[str, Any]:
        """What ``restore`` needs to carry this clock's time over a restart."""
        with self._lock:
            return {
                "anchor_wall": self._anchor_wall,
                "anchor_virtual": self._anchor_virtual,
                "speed": self._speed,
                "advanced": self._advanced,
                "start": self._start,
            }

    def restore(self, state: dict[str, Any]) -> bool:
        """Continue from a saved ``state()`` (time ran on at its speed meanwhile); the speed stays
        this clock's own. False, changing nothing, if it was saved for another start time;
        ValueError, changing nothing, if it is not a state a clock saved."""
        if not isinstance(state, dict):
            raise ValueError("not a saved clock")
        if state.get("start") != self._start:
            return False
        try:
            anchor_wall, speed = float(state["anchor_wall"]), float(state["speed"])
            anchor_virtual = float(state["anchor_virtual"])
            advanced = float(state.get("advanced", 0.0))
        except (KeyError, TypeError, ValueError):
            raise ValueError("not a saved clock") from None
        now_wall = self._wall()
        virtual = anchor_virtual + max((now_wall - anchor_wall) * speed, 0.0)
        if not (self.in_range(virtual) and math.isfinite(advanced)):  # (NaN is in no range)
            raise ValueError("a saved clock outside the years 1970 to 9999")
        with self._lock:
            self._anchor_virtual = virtual
            self._anchor_wall = now_wall
            self._advanced = advanced
        return True

    def describe(self) -> dict[str, object]:
        ts = self.timestamp()
        return {
            "now": self.format(ts),
            "iso": datetime.fromtimestamp(ts, self.tz).isoformat(timespec="seconds"),
            "timestamp": round(ts, 3),
            "timezone": str(self.tz),
            "speed": self._speed,
            "frozen": self._speed == 0,
            "advanced_seconds": round(self._advanced, 3),
            "offset_seconds": round(ts - self._wall(), 3),
        }


def _check_speed(speed: float) -> None:
    if not speed >= 0 or speed == float("inf"):
        raise ValueError("clock speed must be 0 (frozen) or a positive number")
