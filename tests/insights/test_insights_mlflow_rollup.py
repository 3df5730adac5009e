"""MLflow's QueryTraceMetrics reads the hourly rollup where it answers exactly (whole hours, no
trace filter) and gives the same data points as the live aggregates, through edits, overrides,
deletes, expectations and late feedback; where it cannot answer exactly it reads live."""

from datetime import timedelta

import pytest
from django.db import connection

from assessments import services
from assessments.insights import trace_metrics
from assessments.insights.trace_metrics import Aggregation, MetricsRequest
from assessments.models import Assessment

from ..factories import SYSTEM, make_expectation, make_experiment, make_feedback, make_trace

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the rollup is PostgreSQL only")

VALUES = [Aggregation("AVG"), Aggregation("MIN"), Aggregation("MAX"), Aggregation("PERCENTILE", 50.0)]
VALUES.append(Aggregation("PERCENTILE", 90.0))


def metrics_request(experiments, now, **fields) -> MetricsRequest:
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    defaults = dict(
        experiments=experiments,
        metric_name=trace_metrics.COUNT_METRIC,
        aggregations=[Aggregation("COUNT")],
        dimensions=[trace_metrics.NAME_DIMENSION],
        filter_text="",
        names=None,
        kinds=trace_metrics.KINDS,
        interval_seconds=None,
        start=end - timedelta(days=30),
        end=end,
        max_results=1000,
    )
    return MetricsRequest(**{**defaults, **fields})


def live(request, monkeypatch):
    monkeypatch.setattr(trace_metrics, "_rollup_serves", lambda request: False)
    points = trace_metrics.data_points(request)
    monkeypatch.undo()
    return points


def approx(points):
    return [{**p, "values": {k: pytest.approx(v, rel=1e-9, abs=1e-12) for k, v in p["values"].items()}} for p in points]


def same(request, monkeypatch):
    """The rollup answers, and answers what the live read answers."""
    fast = trace_metrics._points_from_rollup(request)
    assert fast is not None
    assert trace_metrics.data_points(request) == fast
    assert fast == approx(live(request, monkeypatch))
    return fast


@pytest.fixture
def mixed(rated):
    """`rated` plus expectations, an edit, an override, a delete and a late rating."""
    experiment, traces = rated
    make_expectation(traces[0])
    make_expectation(traces[1], name="expected_score", value=3)
    first = Assessment.objects.filter(trace=traces[3], name="relevance").get()
    services.override(assessment=first, value=0.75, actor=SYSTEM, channel="api", source_type="HUMAN", source_id="fix")
    thumbs = Assessment.objects.filter(trace=traces[5], name="user_satisfaction").first()
    services.update(assessment=thumbs, actor=SYSTEM, channel="api", value=not thumbs.value)
    services.delete(
        assessment=Assessment.objects.filter(trace=traces[7], name="tone").first(), actor=SYSTEM, channel="api"
    )
    make_feedback(traces[-1], value=False, source_id="late")
    return experiment, traces


@pytest.mark.parametrize("interval", [None, 3600, 86400, 7 * 86400])
@pytest.mark.parametrize(
    "dimensions", [[], ["assessment_name"], ["assessment_name", "assessment_value"], ["assessment_value"]]
)
def test_counts_equal_live(mixed, now, monkeypatch, interval, dimensions):
    experiment, _ = mixed
    request = metrics_request([experiment], now, interval_seconds=interval, dimensions=dimensions)
    if "assessment_value" in dimensions:  # numbers' JSON text is not in the rollup: names without numbers
        request = metrics_request(
            [experiment], now, interval_seconds=interval, dimensions=dimensions, names=["user_satisfaction", "tone"]
        )
    assert same(request, monkeypatch)


@pytest.mark.parametrize("interval", [None, 3600, 86400])
@pytest.mark.parametrize("kinds", [trace_metrics.KINDS, ("feedback",), ("expectation",)])
def test_values_equal_live(mixed, now, monkeypatch, interval, kinds):
    experiment, _ = mixed
    request = metrics_request(
        [experiment],
        now,
        metric_name=trace_metrics.VALUE_METRIC,
        aggregations=VALUES,
        interval_seconds=interval,
        kinds=kinds,
    )
    same(request, monkeypatch)


def test_unbounded_and_several_experiments(mixed, now, monkeypatch):
    experiment, _ = mixed
    other = make_experiment()
    make_feedback(make_trace(other), value=True)
    for fields in ({"start": None, "end": None}, {"names": ["user_satisfaction"]}, {"max_results": 2}):
        same(metrics_request([experiment, other], now, **fields), monkeypatch)
    request = metrics_request([experiment], now, dimensions=[], start=None, end=None)
    assert (
        same(request, monkeypatch)[0]["values"]["COUNT"]
        == Assessment.objects.filter(experiment=experiment, valid=True).count()
    )


def test_empty_range_equals_live(mixed, now, monkeypatch):
    experiment, _ = mixed
    for metric, aggregations in (
        (trace_metrics.COUNT_METRIC, [Aggregation("COUNT")]),
        (trace_metrics.VALUE_METRIC, VALUES),
    ):
        request = metrics_request(
            [experiment], now - timedelta(days=300), metric_name=metric, aggregations=aggregations, dimensions=[]
        )
        same(request, monkeypatch)


def test_what_the_rollup_cannot_answer_is_read_live(mixed, now, monkeypatch):
    experiment, traces = mixed
    make_feedback(traces[4], name="relevance", value=0.123456, source_type="LLM_JUDGE", source_id="judge-v2")
    values = metrics_request([experiment], now, metric_name=trace_metrics.VALUE_METRIC, aggregations=VALUES)
    assert trace_metrics._points_from_rollup(values) is None  # a number beyond 4 decimals
    assert trace_metrics.data_points(values) == live(values, monkeypatch)
    by_value = metrics_request([experiment], now, dimensions=["assessment_value"], names=["relevance"])
    assert trace_metrics._points_from_rollup(by_value) is None  # numbers' JSON text
    assert trace_metrics.data_points(by_value) == live(by_value, monkeypatch)
    # counts and means still come from it (the sums are exact)
    counts = metrics_request([experiment], now, interval_seconds=3600)
    same(counts, monkeypatch)
    means = metrics_request(
        [experiment], now, metric_name=trace_metrics.VALUE_METRIC, aggregations=[Aggregation("AVG")]
    )
    same(means, monkeypatch)
    for fields in ({"filter_text": "tags.env = 'prod'"}, {"start": now - timedelta(days=3)}, {"interval_seconds": 60}):
        request = metrics_request([experiment], now, **fields)
        assert not trace_metrics._rollup_serves(request)
