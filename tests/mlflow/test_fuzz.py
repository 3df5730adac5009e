"""Whatever JSON a client sends to an MLflow endpoint, the answer is a 2xx or 4xx in MLflow's shape."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from . import payloads
from .payloads import new_trace_id

pytestmark = pytest.mark.django_db

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=8,
)

TRACE = "tr-" + "ab" * 16


def mutations(template: dict):
    """The template with one key (at any depth) replaced by an arbitrary JSON value, or removed."""
    paths = []

    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                paths.append((*path, key))
                walk(value, (*path, key))

    walk(template, ())

    @st.composite
    def mutate(draw):
        body = json.loads(json.dumps(template))
        path = draw(st.sampled_from(paths))
        parent = body
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()):
            parent[path[-1]] = draw(json_values)
        else:
            del parent[path[-1]]
        return body

    return mutate()


def assert_mlflow_answer(response):
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert set(response.json()) >= {"error_code", "message"}


ENDPOINTS = [
    (
        "post",
        "/api/3.0/mlflow/traces",
        payloads.trace_info(TRACE, "0", assessments=[payloads.feedback(assessment_id="a-x")]),
    ),
    (
        "post",
        f"/api/3.0/mlflow/traces/{TRACE}/assessments",
        {"assessment": {**payloads.feedback(), "span_id": "0000000000000001"}},
    ),
    (
        "patch",
        f"/api/3.0/mlflow/traces/{TRACE}/assessments/a-fixed",
        {
            "assessment": {
                "assessment_name": "n",
                "feedback": {"value": 1.0},
                "expectation": {"value": 1},
                "metadata": {"a": "b"},
            },
            "update_mask": "assessmentName,feedback,rationale,metadata",
        },
    ),
    (
        "post",
        "/api/3.0/mlflow/traces/search",
        {
            "locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "0"}}],
            "filter": "feedback.x = 'true'",
            "max_results": 10,
            "order_by": ["timestamp_ms DESC"],
            "page_token": "",
        },
    ),
    ("post", "/api/3.0/mlflow/traces/batchGetInfos", {"trace_ids": [TRACE]}),
    ("patch", f"/api/2.0/mlflow/traces/{TRACE}/tags", {"key": "k", "value": "v"}),
    ("post", "/api/2.0/mlflow/experiments/create", {"name": "fuzz"}),
    ("post", "/api/2.0/mlflow/experiments/search", {"filter": "name = 'x'", "max_results": 5}),
]


@pytest.mark.parametrize("method, path, template", ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS])
def test_mutated_bodies_never_500(api, experiment, method, path, template):
    api.start(TRACE, experiment.pk)
    api.log(TRACE, payloads.feedback(assessment_id="a-fixed"))

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=mutations(template) | json_values)
    def check(body):
        response = getattr(api, method)(path, body)
        assert_mlflow_answer(response)

    check()


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    params=st.dictionaries(
        st.sampled_from(["trace_id", "allow_partial", "trace_ids", "experiment_id", "experiment_name"]),
        st.text(max_size=40),
        max_size=3,
    )
)
def test_query_parameters_never_500(api, experiment, params):
    for path in [
        "/api/3.0/mlflow/traces/get",
        "/api/3.0/mlflow/traces/batchGet",
        "/api/2.0/mlflow/experiments/get",
        "/api/2.0/mlflow/experiments/get-by-name",
        f"/api/3.0/mlflow/traces/{new_trace_id()}",
    ]:
        assert_mlflow_answer(api.get(path, **params))
