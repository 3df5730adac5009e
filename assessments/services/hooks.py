"""What other features do after assessments are written: each hook in ASSESSMENTS_WRITTEN is
called as hook(experiment_id, trace_ids) once the write has committed (review queues add the
traces their rules now match). The verbs and the batch call `written` once per write; a hook
must be cheap when it has nothing to do (no query), since it runs after every write."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.db import transaction

ASSESSMENTS_WRITTEN: list[Callable[[int, list[str]], None]] = []


def written(experiment_id: int | None, trace_ids: Iterable[str]) -> None:
    """Run the hooks for the traces whose assessments changed, after the commit (at once
    outside a transaction)."""
    if experiment_id is None or not ASSESSMENTS_WRITTEN:
        return
    trace_ids = list(trace_ids)

    def run():
        for hook in ASSESSMENTS_WRITTEN:
            hook(experiment_id, trace_ids)

    transaction.on_commit(run)
