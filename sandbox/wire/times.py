"""Lakala's times: ``yyyyMMddHHmmss`` in Beijing time, and a wall clock that reads them.

``WallClock`` is what a message is checked against when no sandbox runs (the client, the
contract); the sandbox's virtual ``core.clock.Clock`` is a ``WallClock`` whose time can be moved.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

FORMAT_14 = "%Y%m%d%H%M%S"
BEIJING = "Asia/Shanghai"
# The times a yyyyMMddHHmmss can show: before 1970 there is no Unix time, and after 9999 no
# four-digit year. A clock set or advanced is kept in between; a fast clock stops at LATEST.
EARLIEST = datetime(1970, 1, 2, tzinfo=UTC).timestamp()
LATEST = datetime(9999, 1, 1, tzinfo=UTC).timestamp()


class WallClock:
    """Wall time in a zone, read and written as ``yyyyMMddHHmmss``."""

    def __init__(self, *, tz: str = BEIJING, wall: Callable[[], float] = time.time) -> None:
        self.tz = ZoneInfo(tz)
        self._wall = wall
        # the whole seconds written lately, each once (a create writes now and its expiry)
        self._second = functools.lru_cache(maxsize=16)(self._write)
        # the times read lately: a create's expiry is read by its schema's format and time
        # window checks, then by the engine (a text that is no time raises, and is not kept)
        self._read = functools.lru_cache(maxsize=16)(self._parse)

    def timestamp(self) -> float:
        return self._wall()

    def offset(self) -> float:
        """How far this clock is ahead of wall time, in seconds (negative when behind)."""
        return self.timestamp() - self._wall()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp(), self.tz)

    def now14(self) -> str:
        return self.format(self.timestamp())

    def format(self, timestamp: float) -> str:
        second = int(timestamp)
        if 0 <= timestamp - second < 0.9999995:  # (closer to the next second, datetime rounds up)
            return self._second(second)
        return self._write(timestamp)

    def _write(self, timestamp: float) -> str:
        return datetime.fromtimestamp(timestamp, self.tz).strftime(FORMAT_14)

    def parse(self, text: str) -> float:
        """``yyyyMMddHHmmss`` in the clock's zone to a Unix timestamp; ValueError if impossible."""
        return self._read(text) if type(text) is str else self._parse(text)

    def _parse(self, text: str) -> float:
        if len(text) != 14 or not text.isdigit() or not text.isascii():
            raise ValueError(f"{text!r} is not yyyyMMddHHmmss")
        # by hand rather than strptime, a quarter of the cost; datetime() still refuses
        # impossible dates (month 13, February 30, second 60)
        return datetime(
            int(text[0:4]),
            int(text[4:6]),
            int(text[6:8]),
            int(text[8:10]),
            int(text[10:12]),
            int(text[12:14]),
            tzinfo=self.tz,
        ).timestamp()

    def in_range(self, timestamp: float) -> bool:
        """Whether ``timestamp`` can be written as yyyyMMddHHmmss (see EARLIEST and LATEST)."""
        return EARLIEST <= timestamp <= LATEST


def duration_text(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))
