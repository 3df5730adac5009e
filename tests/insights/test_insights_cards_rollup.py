"""The insights cards read their distinct-trace counts from the trigger-kept rollup (insights
0003) and give exactly what the live aggregates give, so every count still equals the trace list
behind its link: through traces rated twice, edits, overrides, deletes, late feedback and the
deletion of traces."""

import dataclasses

import pytest
from django.db import connection

from assessments import services
from assessments.insights import rollup, selectors
from assessments.insights.selection import name_types
from assessments.models import Assessment
from assessments.trace_deletion import delete_traces

from ..factories import SYSTEM, make_feedback
from .test_insights_selectors import listed, scope_for

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the rollups are PostgreSQL only")


def cards(scope, types):
    return {card.name: card for card in selectors.name_stats(scope, types)[1]}


def as_dict(card):
    out = dataclasses.asdict(card)
    return {k: pytest.approx(v) if isinstance(v, float) else v for k, v in out.items()}


ON_GRID = ("p10", "median", "p90", "minimum", "maximum")


def same_as_live(experiment, now, monkeypatch, on_grid=()):
    """The cards from the rollups equal the live ones; for the names in `on_grid` quantiles,
    minimum and maximum are to the rollup's grid of numbers (0.01)."""
    _, scope = scope_for(experiment, now)
    assert rollup.serves(scope)
    types = name_types(experiment)
    fast = cards(scope, types)
    monkeypatch.setattr(rollup, "serves", lambda scope: False)
    slow = cards(scope, types)
    monkeypatch.undo()
    assert list(fast) == list(slow)
    for name in fast:
        want = as_dict(slow[name])
        for field in ON_GRID if name in on_grid else ():
            want[field] = pytest.approx(getattr(slow[name], field), abs=0.01)
        assert dataclasses.asdict(fast[name]) == want, name
    checked = 0
    for card in fast.values():
        if card.href:
            assert listed(experiment, card.href) == card.traces, card.name
            checked += 1
        for bar in card.bars:
            assert listed(experiment, bar.href) == bar.traces, (card.name, bar.label)
            checked += 1
    assert checked > 20
    return fast


def test_cards_equal_live(rated, now, monkeypatch):
    experiment, _ = rated
    got = same_as_live(experiment, now, monkeypatch)
    assert rollup.distinct_traces(scope_for(experiment, now)[1], got)  # served by the rollup


def test_cards_follow_every_write(rated, now, monkeypatch):
    experiment, traces = rated
    make_feedback(traces[1], value=True, source_id="twice")  # same value twice on one trace
    make_feedback(traces[1], name="tone", value="neutral", source_id="twice")
    make_feedback(traces[1], name="helpfulness", value=2, source_id="twice")
    make_feedback(traces[2], name="helpfulness", value=5, source_id="twice")  # two points on one trace
    make_feedback(traces[2], name="relevance", value=0.55, source_type="LLM_JUDGE", source_id="judge-v2")
    make_feedback(traces[6], name="relevance", value=0.105, source_type="LLM_JUDGE", source_id="judge-v2")
    make_feedback(
        traces[8],
        name="relevance",
        value=None,
        error={"error_code": "E", "error_message": "x"},
        source_type="LLM_JUDGE",
        source_id="judge-v2",
    )
    first = Assessment.objects.filter(trace=traces[3], name="relevance").get()
    services.override(assessment=first, value=0.99, actor=SYSTEM, channel="api", source_type="HUMAN", source_id="fix")
    thumbs = Assessment.objects.filter(trace=traces[5], name="user_satisfaction").first()
    services.update(assessment=thumbs, actor=SYSTEM, channel="api", value=not thumbs.value)
    services.delete(
        assessment=Assessment.objects.filter(trace=traces[7], name="tone").first(), actor=SYSTEM, channel="api"
    )
    twice = Assessment.objects.filter(trace=traces[1], name="user_satisfaction", source_id="twice").get()
    services.delete(assessment=twice, actor=SYSTEM, channel="api")  # back to one: still counted once
    make_feedback(traces[-1], value=False, source_id="late")
    same_as_live(experiment, now, monkeypatch, on_grid=["relevance"])
    delete_traces(experiment=experiment, actor=SYSTEM, channel="api", trace_ids=[traces[0].pk, traces[2].pk])
    got = same_as_live(experiment, now, monkeypatch, on_grid=["relevance"])
    assert (
        got["user_satisfaction"].traces
        == Assessment.objects.filter(
            experiment=experiment,
            name="user_satisfaction",
            valid=True,
            trace__request_time__gte=scope_for(experiment, now)[1].start,
        )
        .values("trace_id")
        .distinct()
        .count()
    )


def test_values_off_the_grid(rated, now, monkeypatch):
    """Long strings and fractions on a scale are read live; continuous numbers off the grid keep
    exact counts (histograms included) and mean, and quantiles, minimum and maximum to the grid."""
    experiment, traces = rated
    make_feedback(traces[4], name="relevance", value=0.0123456, source_type="LLM_JUDGE", source_id="judge-v2")
    make_feedback(traces[4], name="tone", value="x" * 300, source_id="long")
    got = same_as_live(experiment, now, monkeypatch, on_grid=["relevance"])
    assert got["relevance"].minimum == 0.01
    assert got["relevance"].bars[0].label.startswith("0.01–")


def test_traces_in_range_follow_trace_writes(rated, now):
    """The per-hour trace counts (insights 0005) equal the live count through ingestion, a moved
    request time, another experiment's traces and deletion."""
    from datetime import timedelta

    from assessments.insights.selection import traces_in
    from traces.models import Trace

    from ..factories import make_experiment, make_trace

    experiment, traces = rated
    _, scope = scope_for(experiment, now)

    def agree():
        assert rollup.traces_in_hours(scope) == traces_in(scope).count()

    agree()
    make_trace(experiment)
    make_trace(make_experiment())
    Trace.objects.filter(pk=traces[1].pk).update(request_time=now - timedelta(days=40))
    Trace.objects.filter(pk=traces[2].pk).update(tags={"moved": "no"})
    agree()
    delete_traces(experiment=experiment, actor=SYSTEM, channel="api", trace_ids=[traces[0].pk, traces[3].pk])
    agree()
    assert rollup.traces_in_hours(scope) == 24 - 1 - 2  # one moved out, two deleted (the new ones lie outside)
