"""Read replicas: heavy reads go to a PostgreSQL streaming replica, everything else to the primary.

Explicit, not magic. Nothing reads from a replica unless the code says so:

    @reads_from_replica
    def trace_list(request, experiment_id): ...

Inside such a view (or a `replica_reads()` block) the router (`ReplicaRouter`, installed when
DATABASE_REPLICA_URLS names replicas) sends reads to one healthy replica, chosen once per block;
writes always go to the primary, and so does every read outside a marked block: the panel after
a change, GET after POST, the queue's `next` read their own writes by construction.

A replica is healthy when it answers and lags the primary by at most
FEEDBACKHUB_REPLICA_MAX_LAG_SECONDS; each process checks a replica at most every
FEEDBACKHUB_REPLICA_CHECK_SECONDS (one tiny query). A replica that dies in the middle of a marked
view is marked down and the view runs again on the primary, so a lost replica costs no request.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.utils import DatabaseError

logger = logging.getLogger(__name__)

REPLICA_PREFIX = "replica"

# Lag in seconds: 0 while the replica has replayed all it received from a streaming primary;
# otherwise the age of the last replayed transaction (an idle primary that is not streaming
# makes this grow, which skips a replica that may have been cut off).
LAG_SQL = """
SELECT CASE
    WHEN NOT pg_is_in_recovery() THEN 0
    WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()
         AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming') THEN 0
    ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)
END
"""


@dataclass
class Health:
    healthy: bool
    checked_at: float
    lag: float | None = None


# Per process on purpose: whether this host can reach a replica is this host's knowledge.
_health: dict[str, Health] = {}
# None outside a marked block; "" inside one before the first read; then the alias chosen.
_block: ContextVar[str | None] = ContextVar("feedbackhub_replica_block", default=None)


def replica_aliases() -> list[str]:
    return [alias for alias in settings.DATABASES if alias.startswith(REPLICA_PREFIX)]


def check(alias: str) -> Health:
    """Ask the replica for its lag (one query); unreachable or lagging → unhealthy."""
    now = time.monotonic()
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute(LAG_SQL)
            lag = float(cursor.fetchone()[0])
    except DatabaseError as exc:
        logger.warning("replica %s skipped: %s", alias, str(exc).splitlines()[0] if str(exc) else exc)
        _close_quietly(alias)
        return Health(healthy=False, checked_at=now)
    healthy = lag <= settings.FEEDBACKHUB_REPLICA_MAX_LAG_SECONDS
    if not healthy:
        logger.warning("replica %s skipped: %.1f s behind", alias, lag)
    return Health(healthy=healthy, checked_at=now, lag=lag)


def healthy_replica() -> str | None:
    """A replica to read from (random among the healthy ones), or None for the primary."""
    now = time.monotonic()
    candidates = []
    for alias in replica_aliases():
        health = _health.get(alias)
        if health is None or now - health.checked_at >= settings.FEEDBACKHUB_REPLICA_CHECK_SECONDS:
            health = _health[alias] = check(alias)
        if health.healthy:
            candidates.append(alias)
    return random.choice(candidates) if candidates else None


def mark_down(alias: str) -> None:
    """Skip `alias` until its next check is due."""
    _health[alias] = Health(healthy=False, checked_at=time.monotonic())
    _close_quietly(alias)


def forget_health() -> None:
    _health.clear()


def _close_quietly(alias: str) -> None:
    try:
        connections[alias].close()
    except DatabaseError:
        pass


def read_alias() -> str:
    """The alias reads use here: the block's replica, or the primary."""
    chosen = _block.get()
    if chosen is None:
        return DEFAULT_DB_ALIAS
    if chosen == "":
        chosen = healthy_replica() or DEFAULT_DB_ALIAS
        _block.set(chosen)
    return chosen


@contextmanager
def replica_reads():
    """Reads inside the block may go to a replica (one for the whole block)."""
    token = _block.set("")
    try:
        yield
    finally:
        _block.reset(token)


def reads_from_replica(view):
    """Run `view` with its reads on a replica; if the replica fails mid-view, run it again on the
    primary. Only for views that do not write (a second run must be harmless)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if not replica_aliases():
            return view(*args, **kwargs)
        with replica_reads():
            try:
                return view(*args, **kwargs)
            except DatabaseError:
                alias = _block.get()
                if not alias or alias == DEFAULT_DB_ALIAS or not connections[alias].errors_occurred:
                    raise
                logger.warning("replica %s failed during %s; answering from the primary", alias, view.__name__)
                mark_down(alias)
        return view(*args, **kwargs)

    return wrapper


class ReplicaRouter:
    """Reads in a `replica_reads()` block → its replica; all else → the primary. An object read
    from a replica is saved to the primary (Django would otherwise write back where it came from)."""

    def db_for_read(self, model, **hints):
        return read_alias()

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        return True  # primary and replicas hold the same rows

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == DEFAULT_DB_ALIAS
