"""Bounds on user-driven searches: a search stops after FEEDBACKHUB_SEARCH_TIMEOUT_MS on PostgreSQL.

A search is a statement whose cost the caller chooses (filters, patterns, result sizes). On
PostgreSQL `bounded_search()` runs it in a transaction with `SET LOCAL statement_timeout`, so the
database cancels it and the caller gets a 400 saying so, instead of a worker busy for minutes.
SQLite has no statement timeout; the searches that could run unbounded there (experiment name
patterns) use a linear-time matcher instead (traces.mlflow_experiments).
"""

from __future__ import annotations

from contextlib import contextmanager

from django.conf import settings
from django.db import OperationalError, connections, transaction
from rest_framework import status
from rest_framework.exceptions import APIException

from .replicas import read_alias

QUERY_CANCELED = "57014"  # PostgreSQL's SQLSTATE for a statement stopped by statement_timeout


class SearchTimeout(APIException):
    """A search that ran longer than FEEDBACKHUB_SEARCH_TIMEOUT_MS (400 naming the filter)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "search_timeout"

    def __init__(self, field: str = "filter"):
        seconds = settings.FEEDBACKHUB_SEARCH_TIMEOUT_MS / 1000
        self.message = (
            f"This search ran longer than {seconds:g} s and was stopped; narrow the filter "
            "(fewer wildcards, a shorter time range) and try again."
        )
        super().__init__({field: [self.message]})


@contextmanager
def bounded_search(field: str = "filter"):
    """Run the block's queries with PostgreSQL's statement_timeout; SearchTimeout when it fires.

    Evaluate the querysets inside the block: a lazy queryset evaluated after it runs unbounded.
    Inside a `replica_reads()` block the bound is set on the replica the search reads from.
    """
    timeout = settings.FEEDBACKHUB_SEARCH_TIMEOUT_MS
    alias = read_alias()
    connection = connections[alias]
    if connection.vendor != "postgresql" or timeout <= 0:
        yield
        return
    enclosed = connection.in_atomic_block
    try:
        with transaction.atomic(using=alias):
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL statement_timeout = {int(timeout)}")
            yield
            if enclosed:  # an enclosing transaction keeps SET LOCAL until it ends
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL statement_timeout = DEFAULT")
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) == QUERY_CANCELED:
            raise SearchTimeout(field) from None
        raise
