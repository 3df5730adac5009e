"""The MLflow runs surface and trace ↔ run links over HTTP, in the shapes of docs/mlflow-runs.md
(parsed strictly with the client's own protobuf messages)."""

import pytest
from mlflow.protos.service_pb2 import CreateRun, GetRun, RunStatus, SearchRuns, UpdateRun

from tests.factories import make_api_key, make_experiment, make_trace
from traces.models import Run, RunTrace

from .rawapi import MlflowApi, error, proto

RUNS = "/api/2.0/mlflow/runs"


@pytest.fixture
def created(api, experiment):
    body = {
        "experiment_id": str(experiment.pk),
        "user_id": "root",
        "start_time": 1796285510252,
        "tags": [{"key": "mlflow.user", "value": "root"}, {"key": "mlflow.source.name", "value": "eval.py"}],
    }
    response = api.post(f"{RUNS}/create", body)
    assert response.status_code == 200, response.content
    return response.json()["run"]


def test_create_answers_the_run_with_a_generated_name(created, experiment):
    proto({"run": created}, CreateRun.Response)
    info = created["info"]
    assert info["run_id"] == info["run_uuid"] and len(info["run_id"]) == 32
    assert info["status"] == "RUNNING" and info["start_time"] == 1796285510252 and "end_time" not in info
    assert info["experiment_id"] == str(experiment.pk) and info["user_id"] == "root"
    assert info["artifact_uri"] == f"mlflow-artifacts:/{experiment.pk}/{info['run_id']}/artifacts"
    tags = {tag["key"]: tag["value"] for tag in created["data"]["tags"]}
    assert tags["mlflow.runName"] == info["run_name"] and info["run_name"]
    assert tags["mlflow.source.name"] == "eval.py"


def test_evaluation_sequence_and_get(api, created):
    """set-tag, log-inputs, log-batch (tags, then metrics), update: as genai.evaluate sends them."""
    run_id = created["info"]["run_id"]
    both = {"run_id": run_id, "run_uuid": run_id}
    assert api.post(f"{RUNS}/set-tag", {**both, "key": "mlflow.runType", "value": "genai_evaluate"}).json() == {}
    dataset = {"name": "dataset", "digest": "c49961ae", "source_type": "code", "source": "{}", "profile": "{}"}
    assert api.post(f"{RUNS}/log-inputs", {"run_id": run_id, "datasets": [{"dataset": dataset}] * 2}).json() == {}
    tags = [{"key": "mlflow.genaiEvaluate.agent.function", "value": "__main__.predict_fn"}]
    assert api.post(f"{RUNS}/log-batch", {"run_id": run_id, "tags": tags}).status_code == 200
    metrics = [
        {"key": "exact_match/mean", "value": 0.25, "timestamp": 1, "step": 0, "run_id": run_id},
        {"key": "exact_match/mean", "value": 0.5, "timestamp": 2, "step": 0, "run_id": run_id},
        {"key": "word_count/mean", "value": 3, "timestamp": 2, "step": 0},
    ]
    assert api.post(f"{RUNS}/log-batch", {"run_id": run_id, "metrics": metrics, "params": []}).status_code == 200
    assert api.post(f"{RUNS}/log-parameter", {**both, "key": "model", "value": "m1"}).status_code == 200
    assert api.post(f"{RUNS}/log-metric", {**both, "key": "latency", "value": 1.5, "timestamp": 3}).json() == {}
    response = api.post(f"{RUNS}/update", {**both, "status": "FINISHED", "end_time": 1796285545531})
    assert response.status_code == 200
    info = proto(response.json(), UpdateRun.Response).run_info
    assert info.status == RunStatus.Value("FINISHED") and info.end_time == 1796285545531

    response = api.get(f"{RUNS}/get", run_uuid=run_id, run_id=run_id)
    assert response.status_code == 200
    run = response.json()["run"]
    proto(response.json(), GetRun.Response)
    assert run["info"]["status"] == "FINISHED"
    assert sorted((m["key"], m["value"]) for m in run["data"]["metrics"]) == [
        ("exact_match/mean", 0.5),
        ("latency", 1.5),
        ("word_count/mean", 3.0),
    ]
    assert run["data"]["params"] == [{"key": "model", "value": "m1"}]
    tags = {tag["key"]: tag["value"] for tag in run["data"]["tags"]}
    assert tags["mlflow.runType"] == "genai_evaluate" and "mlflow.genaiEvaluate.agent.function" in tags
    assert run["inputs"] == {"dataset_inputs": [{"dataset": dataset}]}  # the same dataset kept once
    assert len(Run.objects.get(pk=run_id).metrics) == 4  # every value is kept

    assert api.post(f"{RUNS}/delete-tag", {"run_id": run_id, "key": "mlflow.runType"}).status_code == 200
    message = error(
        api.post(f"{RUNS}/delete-tag", {"run_id": run_id, "key": "mlflow.runType"}), 400, "INVALID_PARAMETER_VALUE"
    )
    assert "No tag with name: mlflow.runType" in message


@pytest.mark.parametrize(
    ("path", "body", "needle"),
    [
        ("log-batch", {"metrics": [{"key": "m", "value": "high"}]}, "metrics[0].value"),
        ("log-batch", {"metrics": [{"key": "m", "value": 1, "step": 1.5}]}, "metrics[0].step"),
        ("log-batch", {"metrics": [{"value": 1}]}, "metrics[0].key"),
        ("log-batch", {"tags": [{"key": "k", "value": "v" * 8001}]}, "limit is 8000"),
        ("log-batch", {"tags": "k=v"}, "'tags' must be a list"),
        ("log-batch", {"params": [{"key": "p", "value": 1}]}, "params[0].value"),
        ("log-batch", {"metrics": [{"key": "m", "value": 1}] * 1001}, "at most 1000"),
        ("update", {"status": "DONE"}, "Unknown run status 'DONE'"),
        ("update", {"end_time": -1}, "end_time"),
        ("log-inputs", {"datasets": [{"dataset": {"name": "d"}}]}, "needs a name and a digest"),
    ],
)
def test_bad_run_input_is_a_400_naming_the_field(api, created, path, body, needle):
    run_id = created["info"]["run_id"]
    message = error(api.post(f"{RUNS}/{path}", {"run_id": run_id, **body}), 400, "INVALID_PARAMETER_VALUE")
    assert needle in message


def test_params_are_immutable(api, created):
    run_id = created["info"]["run_id"]
    first = {"run_id": run_id, "params": [{"key": "model", "value": "a"}]}
    assert api.post(f"{RUNS}/log-batch", first).status_code == 200
    assert api.post(f"{RUNS}/log-batch", first).status_code == 200  # the same value again is fine
    changed = {"run_id": run_id, "params": [{"key": "model", "value": "b"}]}
    assert "Changing param values is not allowed" in error(
        api.post(f"{RUNS}/log-batch", changed), 400, "INVALID_PARAMETER_VALUE"
    )
    assert Run.objects.get(pk=run_id).params == {"model": "a"}


def test_unknown_and_invisible_runs_are_404(api, created, other_experiment):
    assert "Run with id=" in error(api.get(f"{RUNS}/get", run_id="0" * 32), 404, "RESOURCE_DOES_NOT_EXIST")
    error(api.get(f"{RUNS}/get", run_id="not-a-run"), 404, "RESOURCE_DOES_NOT_EXIST")
    error(api.get(f"{RUNS}/get"), 400, "INVALID_PARAMETER_VALUE")
    other = MlflowApi(make_api_key(other_experiment)[1])
    run_id = created["info"]["run_id"]
    error(other.get(f"{RUNS}/get", run_id=run_id), 404, "RESOURCE_DOES_NOT_EXIST")
    error(other.post(f"{RUNS}/update", {"run_id": run_id, "status": "KILLED"}), 404, "RESOURCE_DOES_NOT_EXIST")
    error(
        other.post(f"{RUNS}/create", {"experiment_id": str(created["info"]["experiment_id"])}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    error(MlflowApi(None).get(f"{RUNS}/get", run_id=run_id), 401, "UNAUTHENTICATED")


def test_default_experiment_is_the_keys(api, experiment):
    response = api.post(f"{RUNS}/create", {"experiment_id": "0", "run_name": "named"})
    assert response.status_code == 200
    assert response.json()["run"]["info"]["experiment_id"] == str(experiment.pk)
    assert response.json()["run"]["info"]["run_name"] == "named"


def test_search_runs_filters_orders_and_pages(api, experiment):
    ids = []
    for n in range(3):
        body = {"experiment_id": str(experiment.pk), "run_name": f"run-{n}", "start_time": 1000 + n}
        run_id = api.post(f"{RUNS}/create", body).json()["run"]["info"]["run_id"]
        ids.append(run_id)
        kind = "genai_evaluate" if n else "other"
        api.post(
            f"{RUNS}/log-batch",
            {
                "run_id": run_id,
                "tags": [{"key": "mlflow.runType", "value": kind}],
                "metrics": [{"key": "score", "value": n, "timestamp": 1, "step": 0}],
            },
        )

    def search(**body):
        response = api.post(f"{RUNS}/search", {"experiment_ids": [str(experiment.pk)], **body})
        assert response.status_code == 200, response.content
        proto(response.json(), SearchRuns.Response)
        return [run["info"]["run_id"] for run in response.json().get("runs", [])], response.json()

    assert search()[0] == ids[::-1]  # newest first
    assert search(filter="tags.mlflow.runType = 'genai_evaluate'")[0] == [ids[2], ids[1]]
    assert search(filter="tags.`mlflow.runType` != 'other' AND metrics.score >= 2")[0] == [ids[2]]
    assert search(filter="attributes.run_name LIKE 'run-%' and metrics.score < 1")[0] == [ids[0]]
    assert search(filter="attributes.start_time > 1000")[0] == [ids[2], ids[1]]
    assert search(order_by=["attributes.run_name ASC"])[0] == ids
    assert search(run_view_type="DELETED_ONLY")[0] == []
    first, body = search(max_results=2)
    assert first == [ids[2], ids[1]] and body["next_page_token"]
    assert search(max_results=2, page_token=body["next_page_token"])[0] == [ids[0]]
    for bad, needle in [
        ("tags.kind = 'a' OR tags.kind = 'b'", "joined with AND"),
        ("metrics.score = 'high'", "metrics compare with a number"),
        ("colour.x = 'red'", "Invalid entity type 'colour'"),
        ("attributes.size = 'x'", "Invalid attribute key 'size'"),
    ]:
        response = api.post(f"{RUNS}/search", {"experiment_ids": [str(experiment.pk)], "filter": bad})
        assert needle in error(response, 400, "INVALID_PARAMETER_VALUE")
    error(api.post(f"{RUNS}/search", {}), 400, "INVALID_PARAMETER_VALUE")


def test_link_traces_to_run_and_search_traces_by_run_id(api, experiment, other_experiment, created):
    """run_id matches metadata mlflow.sourceRun (an evaluation's own traces) or a link (traces
    `mlflow traces evaluate` scored); links to unknown or foreign traces are skipped."""
    run_id = created["info"]["run_id"]
    own = make_trace(experiment, metadata={"mlflow.sourceRun": run_id})
    linked = make_trace(experiment)
    unrelated = make_trace(experiment)
    foreign = make_trace(other_experiment)
    body = {"trace_ids": [linked.trace_id, foreign.trace_id, "tr-" + "f" * 32], "run_id": run_id}
    for _ in range(2):  # idempotent
        assert api.post("/api/2.0/mlflow/traces/link-to-run", body).json() == {}
    assert list(RunTrace.objects.values_list("trace_id", flat=True)) == [linked.trace_id]

    def search(text):
        location = {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": str(experiment.pk)}}
        response = api.post("/api/3.0/mlflow/traces/search", {"locations": [location], "filter": text})
        assert response.status_code == 200, response.content
        return sorted(trace["trace_id"] for trace in response.json().get("traces", []))

    assert search(f"attribute.run_id = '{run_id}'") == sorted([own.trace_id, linked.trace_id])
    assert search(f"run_id = '{run_id}'") == search(f"trace.run_id IN ('{run_id}', 'x')")
    assert search("run_id IS NULL") == [unrelated.trace_id]
    assert search(f"run_id != '{run_id}'") == []
    error(api.post("/api/2.0/mlflow/traces/link-to-run", {**body, "run_id": "0" * 32}), 404, "RESOURCE_DOES_NOT_EXIST")
    too_many = {"trace_ids": [linked.trace_id] * 101, "run_id": run_id}
    assert "more than 100" in error(
        api.post("/api/2.0/mlflow/traces/link-to-run", too_many), 400, "INVALID_PARAMETER_VALUE"
    )


def test_a_viewer_key_scope_cannot_write_runs_of_other_experiments(experiment):
    """A run is written by whoever may write traces in its experiment (reviewer or key)."""
    other = make_experiment()
    api = MlflowApi(make_api_key(other)[1])
    error(api.post(f"{RUNS}/create", {"experiment_id": str(experiment.pk)}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert not Run.objects.exists()


ODD_VALUES = [None, 1, -1, 1.5, 10**30, "x", "", "\x00", [], {}, [1], {"a": 1}, True, "9" * 40]
WRITE_PATHS = [
    "runs/create",
    "runs/update",
    "runs/log-batch",
    "runs/log-metric",
    "runs/log-parameter",
    "runs/set-tag",
    "runs/delete-tag",
    "runs/log-inputs",
    "runs/search",
    "traces/link-to-run",
    "traces/delete-traces",
]


@pytest.mark.parametrize("path", WRITE_PATHS)
def test_odd_values_anywhere_are_never_a_500(api, experiment, created, path):
    """Wrong types in every field the run and deletion endpoints read: a 4xx or a 200, never a 500."""
    run_id = created["info"]["run_id"]
    for value in ODD_VALUES:
        body = {
            "experiment_id": str(experiment.pk),
            "run_id": run_id,
            "key": value,
            "value": value,
            "status": value,
            "end_time": value,
            "metrics": [{"key": "m", "value": value, "timestamp": value, "step": value}],
            "tags": [{"key": value, "value": value}],
            "datasets": [{"dataset": {"name": value, "digest": value}}],
            "trace_ids": [value],
            "request_ids": [value],
            "filter": value,
            "order_by": value,
        }
        response = api.post(f"/api/2.0/mlflow/{path}", body)
        assert response.status_code < 500, (value, response.content)
        for name in ("experiment_id", "run_id", "max_timestamp_millis", "max_traces", "max_results", "page_token"):
            response = api.post(f"/api/2.0/mlflow/{path}", {"experiment_id": str(experiment.pk), name: value})
            assert response.status_code < 500, (name, value, response.content)
