"""The demo makes every insights panel meaningful: a dip after the release, agreeing raters."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from assessments.insights import selectors
from assessments.insights.demo import RELEASE_DAYS_AGO
from assessments.insights.selection import Scope, name_types
from assessments.insights.timerange import window_for
from traces.models import Experiment


@pytest.fixture
def demo(db):
    call_command("load_demo", "--allow-production", stdout=io.StringIO())
    return Experiment.objects.get(name="rag-demo")


def test_satisfaction_dips_after_the_release(demo):
    now = timezone.now()
    release = now - timedelta(days=RELEASE_DAYS_AGO)
    types = name_types(demo)
    before = dict((c.name, c) for c in selectors.name_stats(Scope(demo, now - timedelta(days=30), release), types)[1])
    after = dict(
        (c.name, c)
        for c in selectors.name_stats(
            Scope(demo, release, now + timedelta(hours=1), "tags.app_version = '1.5.0'"), types
        )[1]
    )
    assert before["user_satisfaction"].positive_rate - after["user_satisfaction"].positive_rate > 0.15
    assert before["relevance"].mean - after["relevance"].mean > 0.08
    assert all(bar.traces for bar in before["rating"].bars[1:])  # every level used
    window = window_for("30d", now=now)
    trend = next(
        t
        for t in selectors.trends(Scope(demo, window.start, window.end), window, types)
        if t.name == "user_satisfaction"
    )
    assert sum(1 for point in trend.points if point.value is not None) >= 25
    topics = selectors.breakdown(Scope(demo, release, window.end), types["user_satisfaction"], ("metadata", "topic"))
    assert min(topics, key=lambda row: row.headline).value == "deployment"
    spans = {
        row.value for row in selectors.breakdown(Scope(demo, window.start, window.end), types["rating"], ("span", ""))
    }
    assert "rerank_documents" in spans


def test_judge_and_reviewers_rate_the_same_traces(demo):
    from assessments.models import Assessment

    rows = Assessment.objects.filter(experiment=demo, name="rating", valid=True)
    by_trace = {}
    for trace_id, source_id, value in rows.values_list("trace_id", "source_id", "value"):
        by_trace.setdefault(trace_id, {})[source_id] = value
    pairs = [(r["judge-v1"], r["alice"]) for r in by_trace.values() if "judge-v1" in r and "alice" in r]
    assert len(pairs) > 30
    assert sum(a == b for a, b in pairs) / len(pairs) > 0.6
