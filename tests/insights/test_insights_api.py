"""GET /api/v1/experiments/{id}/metrics and POST /api/3.0/mlflow/traces/metrics (raw requests)."""

import json
import statistics
from collections import Counter, defaultdict
from datetime import datetime, timedelta

import pytest
from rest_framework.test import APIClient

from assessments import services as assessment_services
from assessments.models import Assessment

from ..factories import SYSTEM, make_api_key, make_experiment
from ..mlflow.rawapi import MlflowApi

METRICS = "/api/3.0/mlflow/traces/metrics"


@pytest.fixture
def key_client(rated):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_api_key(rated[0])[1]}")
    return client


def url(experiment):
    return f"/api/v1/experiments/{experiment.pk}/metrics"


def day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def expected(experiment, name):
    rows = Assessment.objects.filter(experiment=experiment, name=name, valid=True, kind="feedback").select_related(
        "trace"
    )
    buckets = defaultdict(list)
    for row in rows:
        buckets[day(row.trace.request_time)].append(row.value)
    return buckets


def test_boolean_buckets_by_day(rated, key_client, now):
    experiment, _ = rated
    response = key_client.get(
        url(experiment),
        {
            "name": "user_satisfaction",
            "interval": "day",
            "start_time": int((now - timedelta(days=8)).timestamp() * 1000),
        },
    )
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["type"] == "boolean" and data["interval"] == "day"
    want = expected(experiment, "user_satisfaction")
    got = {datetime.fromisoformat(b["start"].replace("Z", "+00:00")): b for b in data["buckets"]}
    assert set(got) == set(want)
    for start, values in want.items():
        assert got[start]["count"] == len(values)
        assert got[start]["positive_rate"] == pytest.approx(sum(values) / len(values))


def test_number_buckets_have_mean_and_median(rated, key_client):
    experiment, _ = rated
    data = key_client.get(
        url(experiment), {"name": "relevance", "interval": "week", "start_time": "2020-01-01T00:00:00Z"}
    ).json()
    values = [value for bucket in expected(experiment, "relevance").values() for value in bucket]
    assert sum(b["count"] for b in data["buckets"]) == len(values)
    for bucket in data["buckets"]:
        assert datetime.fromisoformat(bucket["start"].replace("Z", "+00:00")).weekday() == 0
        assert "mean" in bucket and "median" in bucket
    if len(data["buckets"]) == 1:
        assert data["buckets"][0]["median"] == pytest.approx(statistics.median(values))


def test_category_counts_and_group_by(rated, key_client):
    experiment, _ = rated
    data = key_client.get(
        url(experiment), {"name": "tone", "interval": "week", "start_time": "2020-01-01", "group_by": "tag:env"}
    ).json()
    total = Counter()
    for bucket in data["buckets"]:
        assert bucket["group"] in ("prod", "staging")
        total.update(bucket["counts"])
    assert total == Counter(a.value for a in Assessment.objects.filter(experiment=experiment, name="tone"))


def test_filter_narrows_and_bad_input_is_400(rated, key_client):
    experiment, _ = rated
    base = {"name": "user_satisfaction", "start_time": "2020-01-01", "interval": "week"}
    prod = key_client.get(url(experiment), {**base, "filter": "tags.env = 'prod'"}).json()
    everything = key_client.get(url(experiment), base).json()
    assert 0 < sum(b["count"] for b in prod["buckets"]) < sum(b["count"] for b in everything["buckets"])
    bad = key_client.get(url(experiment), {**base, "filter": "tags.env = "})
    assert bad.status_code == 400 and "filter" in bad.json()
    assert key_client.get(url(experiment), {**base, "interval": "minute"}).status_code == 400
    assert key_client.get(url(experiment), {**base, "name": "nope"}).json() == {
        "name": ["no feedback named 'nope' in this experiment"]
    }
    assert key_client.get(url(experiment), {"start_time": "2020-01-01"}).status_code == 400
    assert key_client.get(url(experiment), {**base, "group_by": "colour"}).status_code == 400


def test_outside_the_experiment_is_404(rated, api_client):
    experiment, _ = rated
    assert api_client.get(url(experiment), {"name": "user_satisfaction"}).status_code == 404


def test_late_feedback_lands_in_its_traces_bucket(rated, key_client, now):
    experiment, traces = rated
    old = traces[-1]  # requested ~6 days ago
    params = {
        "name": "user_satisfaction",
        "interval": "day",
        "start_time": int((now - timedelta(days=8)).timestamp() * 1000),
    }
    before = {b["start"]: b["count"] for b in key_client.get(url(experiment), params).json()["buckets"]}
    assessment_services.log_feedback(
        trace=old,
        name="user_satisfaction",
        value=False,
        actor=SYSTEM,
        channel="api",
        source_type="HUMAN",
        source_id="late",
    )
    after = {b["start"]: b["count"] for b in key_client.get(url(experiment), params).json()["buckets"]}
    changed = {start for start in after if after[start] != before.get(start)}
    assert len(changed) == 1
    (start,) = changed
    assert datetime.fromisoformat(start.replace("Z", "+00:00")) == day(old.request_time)


# --- MLflow's QueryTraceMetrics, raw ------------------------------------------------------------


@pytest.fixture
def mlflow_api(rated):
    return MlflowApi(make_api_key(rated[0])[1])


def request(experiment, **fields) -> dict:
    """A QueryTraceMetrics body: counts of the experiment's assessments unless `fields` say otherwise."""
    return {
        "experiment_ids": [str(experiment.pk)],
        "view_type": "ASSESSMENTS",
        "metric_name": "assessment_count",
        "aggregations": [{"aggregation_type": "COUNT"}],
        **fields,
    }


def test_mlflow_count_by_name(rated, mlflow_api):
    experiment, _ = rated
    body = request(experiment, dimensions=["assessment_name"], max_results=1000)
    response = mlflow_api.post(METRICS, body)
    assert response.status_code == 200, response.content
    got = {p["dimensions"]["assessment_name"]: p["values"]["COUNT"] for p in response.json()["data_points"]}
    assert got == dict(
        Counter(Assessment.objects.filter(experiment=experiment, valid=True).values_list("name", flat=True))
    )


def test_mlflow_value_percentiles_by_hour(rated, mlflow_api, now):
    experiment, _ = rated
    start = int((now - timedelta(days=10)).timestamp() * 1000)
    end = int(now.timestamp() * 1000)
    body = request(
        experiment,
        metric_name="assessment_value",
        aggregations=[
            {"aggregation_type": "AVG"},
            {"aggregation_type": "PERCENTILE", "percentile_value": 50.0},
            {"aggregation_type": "MAX"},
        ],
        dimensions=["assessment_name"],
        filters=["assessment.name = 'relevance'"],
        time_interval_seconds=86400,
        start_time_ms=start,
        end_time_ms=end,
    )
    points = mlflow_api.post(METRICS, body).json()["data_points"]
    by_day = defaultdict(list)
    for row in Assessment.objects.filter(experiment=experiment, name="relevance").select_related("trace"):
        by_day[day(row.trace.request_time).isoformat()].append(row.value)
    assert {p["dimensions"]["time_bucket"] for p in points} == set(by_day)
    for point in points:
        values = by_day[point["dimensions"]["time_bucket"]]
        assert point["dimensions"]["assessment_name"] == "relevance"
        assert point["values"]["AVG"] == pytest.approx(statistics.fmean(values))
        assert point["values"]["P50.0"] == pytest.approx(statistics.median(values))
        assert point["values"]["MAX"] == pytest.approx(max(values))


def test_mlflow_count_by_value_with_trace_filter(rated, mlflow_api):
    experiment, _ = rated
    body = request(
        experiment,
        dimensions=["assessment_name", "assessment_value"],
        filters=["assessment.name = 'tone'", "trace.tag.env = 'prod'"],
    )
    points = mlflow_api.post(METRICS, body).json()["data_points"]
    want = Counter(
        json.dumps(a.value)
        for a in Assessment.objects.filter(experiment=experiment, name="tone", trace__tags__env="prod")
    )
    assert {p["dimensions"]["assessment_value"]: p["values"]["COUNT"] for p in points} == want


@pytest.mark.parametrize(
    "change, message",
    [
        ({"view_type": "SPANS"}, "ASSESSMENTS"),
        ({"metric_name": "latency"}, "metric_name"),
        ({"aggregations": [{"aggregation_type": "AVG"}]}, "aggregation_type"),
        ({"dimensions": ["span_name"]}, "dimension"),
        ({"filters": ["span.name = 'x'"]}, "span"),
        ({"filters": ["trace.tag.env = "]}, "filter"),
        ({"time_interval_seconds": 60}, "start_time_ms"),
    ],
)
def test_mlflow_bad_requests_are_invalid_parameter_value(rated, mlflow_api, change, message):
    experiment, _ = rated
    response = mlflow_api.post(METRICS, request(experiment, **change))
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in response.json()["message"]


def test_mlflow_other_experiment_is_404(rated, mlflow_api):
    assert mlflow_api.post(METRICS, request(make_experiment())).status_code == 404
