"""Reads of runs: one run, an experiment's runs, a run's traces with their scores."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from .access import Actor
from .filters import filter_traces
from .models import RUN_ID_RE, Experiment, Run, Trace


def run_for(actor: Actor, run_id: str) -> Run:
    """The run (experiment loaded) if the actor may see its experiment; Http404 otherwise."""
    run = Run.objects.select_related("experiment").filter(pk=run_id).first() if RUN_ID_RE.match(run_id) else None
    if run is None or actor.role(run.experiment_id) is None:
        raise Http404(f"Run with id={run_id[:40]} not found")
    return run


def runs_for_experiment(experiment: Experiment) -> QuerySet[Run]:
    """The experiment's runs, newest first (index run_exp_created)."""
    return Run.objects.filter(experiment=experiment).order_by("-created_at", "run_id")


def traces_of_run(run: Run) -> QuerySet[Trace]:
    """The run's traces, as `search_traces(run_id=…)` finds them: metadata `mlflow.sourceRun`
    or a link. Oldest first, the order an evaluation produced them in."""
    queryset = Trace.objects.filter(experiment_id=run.experiment_id)
    return filter_traces(queryset, f"run_id = '{run.run_id}'").order_by("request_time", "trace_id")


def scores_for_traces(trace_ids: list[str]) -> tuple[list[str], dict[str, dict[str, list]]]:
    """(feedback names, {trace_id: {name: [assessments]}}) of the traces' valid feedback, in one query.

    The Assessment model is looked up through the app registry: the assessments app depends on
    this one, not the other way round (as `selectors.trace_for_detail` does).
    """
    from django.apps import apps

    Assessment = apps.get_model("assessments", "Assessment")
    scores: dict[str, dict[str, list]] = {}
    names: set[str] = set()
    queryset = Assessment.objects.filter(trace_id__in=trace_ids, kind="feedback", valid=True).order_by(
        "create_time", "assessment_id"
    )
    for assessment in queryset.only("trace_id", "name", "value", "error", "source_type", "source_id", "rationale"):
        names.add(assessment.name)
        scores.setdefault(assessment.trace_id, {}).setdefault(assessment.name, []).append(assessment)
    return sorted(names), scores
