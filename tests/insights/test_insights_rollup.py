"""The hourly rollup (PostgreSQL triggers) answers exactly what the live aggregates answer,
through creates, updates, overrides, deletes and late feedback."""

from datetime import timedelta

import pytest
from django.db import connection

from assessments import services
from assessments.insights import metrics, rollup
from assessments.insights.selection import Scope, name_types
from assessments.insights.timerange import window_for
from assessments.models import Assessment

from ..factories import SYSTEM, make_feedback

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the rollup is PostgreSQL only")


def both(scope, typed, interval, group=None, monkeypatch=None):
    fast = metrics.metric_buckets(scope, typed, interval, group)
    monkeypatch.setattr(rollup, "serves", lambda scope: False)
    slow = metrics.metric_buckets(scope, typed, interval, group)
    monkeypatch.undo()
    return fast, slow


def approx(buckets):
    return [{k: (pytest.approx(v) if isinstance(v, float) else v) for k, v in b.items()} for b in buckets]


@pytest.mark.parametrize("name", ["user_satisfaction", "relevance", "tone", "helpfulness"])
@pytest.mark.parametrize("interval, group", [("hour", None), ("day", ("source_type", "")), ("week", None)])
def test_rollup_equals_live(rated, now, monkeypatch, name, interval, group):
    experiment, traces = rated
    window = window_for("30d", now=now)
    scope = Scope(experiment, window.start, window.end)
    assert rollup.serves(scope)
    typed = name_types(experiment)[name]
    fast, slow = both(scope, typed, interval, group, monkeypatch)
    assert fast and fast == approx(slow)


def test_rollup_follows_every_write(rated, now, monkeypatch):
    experiment, traces = rated
    window = window_for("30d", now=now)
    scope = Scope(experiment, window.start, window.end)
    types = name_types(experiment)
    first = Assessment.objects.filter(trace=traces[3], name="relevance").get()
    services.override(assessment=first, value=0.99, actor=SYSTEM, channel="api", source_type="HUMAN", source_id="fixer")
    thumbs = Assessment.objects.filter(trace=traces[5], name="user_satisfaction").first()
    services.update(assessment=thumbs, actor=SYSTEM, channel="api", value=not thumbs.value)
    services.delete(
        assessment=Assessment.objects.filter(trace=traces[7], name="tone").first(), actor=SYSTEM, channel="api"
    )
    make_feedback(traces[-1], value=False, source_id="late")  # late: lands in its trace's (old) hour
    for name in ("relevance", "user_satisfaction", "tone"):
        fast, slow = both(scope, types[name], "hour", None, monkeypatch)
        assert fast == approx(slow), name
    late = [
        b
        for b in metrics.metric_buckets(scope, types["user_satisfaction"], "hour")
        if b["start"] <= traces[-1].request_time < b["start"] + timedelta(hours=1)
    ]
    assert late and late[0]["count"] >= 1
