"""Reads for the retention page and admin."""

from __future__ import annotations

from traces.models import Experiment

from .models import PurgeRun


def purge_runs_for(experiment: Experiment, *, limit: int = 10) -> list[PurgeRun]:
    """The experiment's last purge runs, newest first (one query, purgerun_exp_started)."""
    return list(PurgeRun.objects.filter(experiment_id=experiment.pk).order_by("-started_at", "-id")[:limit])
