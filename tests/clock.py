"""Time helpers for tests of the fixed-window rate limits."""

import time


def fresh_minute() -> None:
    """The rate limits count in fixed windows of a minute: start well inside one, so that the
    requests a test counts do not straddle a window boundary (waits at most 10 s)."""
    left = 60 - time.time() % 60
    if left < 10:
        time.sleep(left + 0.05)
