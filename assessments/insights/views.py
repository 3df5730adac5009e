"""The insights page and its panels (one HTMX request per panel: cards, trends, breakdown).

Thin views: parse the query string (range, filter, breakdown) into a scope and a window, call
the selectors, render. A filter that does not parse, or a bad range, is shown in the panel.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from feedbackhub.replicas import reads_from_replica
from traces import selectors as trace_selectors
from traces.access import Actor
from traces.filters import FIELDS_HELP, FilterError
from traces.views import _filter_error

from . import charts, selectors
from .selection import BOOLEAN, NUMBER, Scope, name_types
from .timerange import PRESETS, window_for

PARAMS = ("range", "start", "end", "filter")


def _context(request, experiment_id: int) -> dict:
    """Experiment, scope, window and the errors of the query string (None scope on error)."""
    actor = Actor.for_user(request.user)
    experiment = trace_selectors.experiment_for(actor, experiment_id)
    params = request.GET
    text = params.get("filter", "")
    context = {"experiment": experiment, "filter_text": text, "error": None, "filter_error": None, "scope": None}
    try:
        window = window_for(params.get("range"), params.get("start"), params.get("end"), now=timezone.now())
    except ValidationError as exc:
        context["error"] = "; ".join(f"{key}: {' '.join(messages)}" for key, messages in exc.message_dict.items())
        return context
    kept = {key: params[key] for key in PARAMS if params.get(key)}
    context.update(
        window=window,
        scope=Scope(experiment, window.start, window.end, text),
        query=urlencode(kept),
        range_links=[(preset, _with(kept, range=preset, start=None, end=None)) for preset in PRESETS],
    )
    return context


def _with(params: dict, **changes) -> str:
    merged = {**params, **changes}
    return urlencode({key: value for key, value in merged.items() if value})


def _panel(request, template: str, context: dict, build) -> object:
    if context["scope"] is not None:
        try:
            context.update(build(context["scope"]))
        except FilterError as exc:
            context["filter_error"] = _filter_error(context["filter_text"], exc)
    return render(request, template, context)


@login_required
@require_GET
@reads_from_replica
def insights(request, experiment_id: int):
    """The page shell: range switch, filter box, breakdown picker and three panels that load
    themselves. Queries: experiment, role, and (for the picker) one sample of tag keys."""
    context = _context(request, experiment_id)
    base = reverse("insights:insights", args=[experiment_id])
    context.update(
        base=base,
        fields_help=FIELDS_HELP,
        presets=list(PRESETS),
        by=request.GET.get("by", ""),
        name=request.GET.get("name", ""),
        list_url=reverse("traces:trace_list", args=[experiment_id]),
    )
    if context["scope"] is not None:
        try:
            context["choices"] = selectors.dimension_choices(context["scope"])
        except FilterError as exc:
            context["filter_error"] = _filter_error(context["filter_text"], exc)
        context["names"] = list(name_types(context["experiment"]))
    return render(request, "insights/insights.html", context)


@login_required
@require_GET
@reads_from_replica
def cards_panel(request, experiment_id: int):
    """One card per feedback name: count, coverage, by source type, the value's distribution."""

    def build(scope):
        total, cards = selectors.name_stats(scope, name_types(scope.experiment))
        return {"total": total, "cards": [(card, charts.bar_rows(card.bars)) for card in cards]}

    return _panel(request, "insights/panels.html#cards", _context(request, experiment_id), build)


@login_required
@require_GET
@reads_from_replica
def trends_panel(request, experiment_id: int):
    """A trend per name over the window's buckets, and this period against the previous one."""
    context = _context(request, experiment_id)

    def build(scope):
        rows = []
        for trend in selectors.trends(scope, context["window"], name_types(scope.experiment)):
            bounded = trend.name_type.type == BOOLEAN
            rows.append(
                (trend, charts.line_points(trend.points, low=0 if bounded else None, high=1 if bounded else None))
            )
        return {"trends": rows}

    return _panel(request, "insights/panels.html#trends", context, build)


@login_required
@require_GET
@reads_from_replica
def breakdown_panel(request, experiment_id: int):
    """The top values of a tag, metadata key or span name for one feedback name."""
    context = _context(request, experiment_id)
    by, name = request.GET.get("by", ""), request.GET.get("name", "")
    context.update(by=by, name=name)

    def build(scope):
        types = name_types(scope.experiment)
        if not by or not name:
            return {"prompt": True}
        if name not in types:
            return {"breakdown_error": f"name: no feedback named {name!r} in this experiment"}
        try:
            dimension = selectors.parse_dimension(by)
        except ValueError as exc:
            return {"breakdown_error": f"by: {exc}"}
        typed = types[name]
        rows = selectors.breakdown(scope, typed, dimension)
        return {
            "rows": rows,
            "typed": typed,
            "headline": "positive rate" if typed.type == BOOLEAN else "mean" if typed.type == NUMBER else "ratings",
            "chart": charts.bar_rows(rows),
        }

    return _panel(request, "insights/panels.html#breakdown", context, build)
