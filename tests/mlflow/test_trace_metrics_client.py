"""The full mlflow 3.18 client's query_trace_metrics (QueryTraceMetrics, ASSESSMENTS view)
against the live server: counts by name and value, and hourly AVG / P50 of a judge's scores."""

import json
import statistics
import textwrap
from collections import Counter, defaultdict

import pytest

from assessments.models import Assessment

from .test_full_mlflow_client import client_env, full_client, run  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.live]

SCRIPT = textwrap.dedent("""
    import json, time
    import mlflow
    from mlflow.entities import AssessmentSource
    from mlflow.entities.trace_metrics import AggregationType, MetricAggregation, MetricViewType
    from mlflow.tracking._tracking_service.utils import _get_store

    experiment = mlflow.set_experiment("metrics-client")

    @mlflow.trace
    def answer(n):
        mlflow.update_current_trace(tags={"env": "prod" if n % 2 else "dev"})
        return f"answer {n}"

    judge = AssessmentSource(source_type="LLM_JUDGE", source_id="judge-v1")
    human = AssessmentSource(source_type="HUMAN", source_id="alice")
    for n in range(6):
        answer(n)
        trace_id = mlflow.get_last_active_trace_id()
        mlflow.log_feedback(trace_id=trace_id, name="relevance", value=0.1 * (n + 1), source=judge)
        mlflow.log_feedback(trace_id=trace_id, name="user_satisfaction", value=n % 3 != 0, source=human)
    mlflow.flush_trace_async_logging()
    store = _get_store()
    ids = [experiment.experiment_id]
    counts = store.query_trace_metrics(ids, MetricViewType.ASSESSMENTS, "assessment_count",
                                       [MetricAggregation(AggregationType.COUNT)],
                                       dimensions=["assessment_name", "assessment_value"])
    now = int(time.time() * 1000)
    values = store.query_trace_metrics(ids, MetricViewType.ASSESSMENTS, "assessment_value",
                                       [MetricAggregation(AggregationType.AVG),
                                        MetricAggregation(AggregationType.PERCENTILE, 50.0),
                                        MetricAggregation(AggregationType.MIN)],
                                       dimensions=["assessment_name"],
                                       filters=["assessment.name = 'relevance'", "trace.tag.env = 'prod'"],
                                       time_interval_seconds=3600, start_time_ms=now - 86400000, end_time_ms=now + 60000)
    print("RESULT=" + json.dumps({
        "experiment_id": experiment.experiment_id,
        "counts": [[p.dimensions, p.values] for p in counts],
        "values": [[p.dimensions, p.values] for p in values],
    }))
""")


def test_query_trace_metrics_with_the_real_client(client_env, tmp_path):  # noqa: F811
    out = json.loads(run(SCRIPT, client_env, tmp_path).strip().splitlines()[-1].removeprefix("RESULT="))
    rows = Assessment.objects.filter(experiment_id=int(out["experiment_id"]), valid=True).select_related("trace")
    want = Counter((row.name, json.dumps(row.value)) for row in rows)
    got = {(dims["assessment_name"], dims["assessment_value"]): values["COUNT"] for dims, values in out["counts"]}
    assert got == want and sum(got.values()) == 12
    hours = defaultdict(list)
    for row in rows:
        if row.name == "relevance" and row.trace.tags.get("env") == "prod":
            hours[row.trace.request_time.replace(minute=0, second=0, microsecond=0).isoformat()].append(row.value)
    assert {dims["time_bucket"] for dims, _ in out["values"]} == set(hours)
    for dims, values in out["values"]:
        scores = hours[dims["time_bucket"]]
        assert dims["assessment_name"] == "relevance"
        assert values["AVG"] == pytest.approx(statistics.fmean(scores))
        assert values["P50.0"] == pytest.approx(statistics.median(scores))
        assert values["MIN"] == pytest.approx(min(scores))
