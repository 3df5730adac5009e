"""Run a write again when PostgreSQL chose it as a deadlock's victim.

Two writers that touch the same rows in opposite orders (a span export attaching held
feedback while the client logs more feedback on the same trace) can deadlock; PostgreSQL
aborts one of them. When that one ran in its own transactions (not inside an outer atomic
block), nothing it did is left, so running it again is safe and the client gets its answer
instead of a 503.
"""

from __future__ import annotations

import functools
import logging
import time

from django.db import connection
from django.db.utils import OperationalError

logger = logging.getLogger(__name__)

RETRYABLE = {"40P01", "40001"}  # deadlock_detected, serialization_failure
ATTEMPTS = 3


def _retryable(exc: OperationalError) -> bool:
    return getattr(exc.__cause__, "sqlstate", None) in RETRYABLE


def retry_on_deadlock(function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return function(*args, **kwargs)
            except OperationalError as exc:
                if attempt == ATTEMPTS or connection.in_atomic_block or not _retryable(exc):
                    raise
                logger.warning("%s lost a deadlock (attempt %d); running it again", function.__name__, attempt)
                time.sleep(0.02 * attempt)
        raise AssertionError("unreachable")

    return wrapper
