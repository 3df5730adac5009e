"""Evaluation runs in the browser: an experiment's runs, and one run's traces with their scores."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from . import run_selectors, selectors
from .access import Actor

RUNS_PER_PAGE = 50
TRACES_PER_PAGE = 100


@login_required
@require_GET
def run_list(request: HttpRequest, experiment_id: int) -> HttpResponse:
    """The experiment's runs, newest first, with their metrics.

    Queries: experiment, role, the count and one page of runs — whatever the number of runs.
    """
    actor = Actor.for_user(request.user)
    experiment = selectors.experiment_for(actor, experiment_id)
    page = Paginator(run_selectors.runs_for_experiment(experiment), RUNS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"experiment": experiment, "page": page, "runs": list(page.object_list)}
    return render(request, "traces/run_list.html", context)


@login_required
@require_GET
def run_detail(request: HttpRequest, run_id: str) -> HttpResponse:
    """One run: its metrics, params and tags, and its traces with every valid feedback as a column.

    Queries: run + experiment, role, the count and one page of traces, the page's feedback.
    """
    actor = Actor.for_user(request.user)
    run = run_selectors.run_for(actor, run_id[:40])
    page = Paginator(run_selectors.traces_of_run(run), TRACES_PER_PAGE).get_page(request.GET.get("page"))
    traces = list(page.object_list)
    names, scores = run_selectors.scores_for_traces([trace.trace_id for trace in traces])
    rows = [
        {"trace": trace, "cells": [scores.get(trace.trace_id, {}).get(name, []) for name in names]} for trace in traces
    ]
    context = {
        "run": run,
        "experiment": run.experiment,
        "metrics": sorted(run.latest_metrics.values(), key=lambda metric: metric["key"]),
        "params": sorted(run.params.items()),
        "tags": sorted((key, value) for key, value in run.tags.items() if not key.startswith("mlflow.")),
        "names": names,
        "rows": rows,
        "page": page,
    }
    return render(request, "traces/run_detail.html", context)
