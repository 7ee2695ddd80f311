"""yyyyMMddHHmmss as the clock writes it: the once-a-second shortcut writes what datetime would."""

from __future__ import annotations

from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.wire.times import EARLIEST, FORMAT_14, LATEST, WallClock

CLOCK = WallClock()


def by_datetime(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, CLOCK.tz).strftime(FORMAT_14)


@settings(max_examples=500, deadline=None)
@given(
    st.integers(int(EARLIEST), int(LATEST) - 1),
    st.sampled_from([0.0, 1e-7, 0.25, 0.5, 0.9999994, 0.9999995, 0.9999996, 0.99999999]),
)
def test_a_time_is_written_as_datetime_writes_it(second: int, fraction: float) -> None:
    timestamp = second + fraction
    assert CLOCK.format(timestamp) == by_datetime(timestamp)
    assert CLOCK.format(second) == by_datetime(second)  # the remembered second, asked again


def test_every_call_within_a_second_agrees_and_the_next_second_moves_on() -> None:
    base = 1_780_000_000
    texts = {CLOCK.format(base + i / 10) for i in range(10)}
    assert texts == {by_datetime(base)}
    assert CLOCK.format(base + 1) == by_datetime(base + 1) != by_datetime(base)
