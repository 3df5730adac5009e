"""The MLflow REST protocol driven as raw HTTP (deterministic ordering, bad input), with every
response checked against the mlflow client's own protobuf messages."""

import json

import pytest
from mlflow.protos import service_pb2

from assessments import mlflow_protocol
from assessments.models import Assessment, Revision
from traces.models import Experiment, Span, Trace

from ..factories import make_api_key, make_experiment, make_feedback, make_trace
from . import payloads
from .payloads import new_trace_id, span_hex
from .rawapi import V3, MlflowApi, error, proto, stored_trace

pytestmark = pytest.mark.django_db


# --- server -----------------------------------------------------------------------------------


def test_version_health_and_server_info(client):
    assert client.get("/version").content == b"3.18.0"
    assert client.get("/health").content == b"OK"
    info = client.get(f"{V3}/server-info").json()
    assert info["store_type"] == "SqlStore" and info["artifact_serving_enabled"] is True


@pytest.mark.parametrize(
    "headers, message",
    [
        ({}, "MLFLOW_TRACKING_TOKEN"),
        ({"Authorization": "Bearer fh_unknown-key-000000000000"}, "Invalid API key"),
        ({"Authorization": "Basic !!!"}, "MLFLOW_TRACKING_TOKEN"),
    ],
)
def test_authentication(client, headers, message):
    response = client.get(f"{V3}/traces/{new_trace_id()}", headers=headers)
    assert message in error(response, 401, "UNAUTHENTICATED")


def test_basic_auth_password_is_the_key(client, api_key, experiment):
    import base64

    token = base64.b64encode(f"anyone:{api_key[1]}".encode()).decode()
    response = client.get(
        "/api/2.0/mlflow/experiments/get", {"experiment_id": experiment.pk}, headers={"Authorization": f"Basic {token}"}
    )
    assert response.status_code == 200 and response.json()["experiment"]["name"] == "rag-demo"


def test_unknown_routes_wrong_methods_and_content_types(api, experiment):
    message = error(api.get("/api/2.0/mlflow/registered-models/get", name="m"), 404, "ENDPOINT_NOT_FOUND")
    assert "does not implement GET /api/2.0/mlflow/registered-models/get" in message
    error(api.get(f"{V3}/traces"), 405, "ENDPOINT_NOT_FOUND")
    message = error(api.post(f"{V3}/traces", "x=1", content_type="text/plain"), 400, "INVALID_PARAMETER_VALUE")
    assert "Content-Type must be one of ['application/json']" in message
    assert "not valid JSON" in error(api.post(f"{V3}/traces", "{oops"), 400, "MALFORMED_REQUEST")
    assert "JSON object" in error(api.post(f"{V3}/traces", "[1]"), 400, "MALFORMED_REQUEST")
    # every /api route also answers under /ajax-api
    assert api.get("/ajax-api/2.0/mlflow/experiments/get", experiment_id=experiment.pk).status_code == 200


# --- experiments ----------------------------------------------------------------------------


def test_set_experiment_sequence(api, api_key):
    message = error(
        api.get("/api/2.0/mlflow/experiments/get-by-name", experiment_name="feedback-demo"),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    assert message == "Could not find experiment with name 'feedback-demo'"
    created = api.post("/api/2.0/mlflow/experiments/create", {"name": "feedback-demo"}).json()
    experiment = Experiment.objects.get(name="feedback-demo")
    assert created == {"experiment_id": str(experiment.pk)}
    assert api_key[0].experiments.filter(pk=experiment.pk).exists()  # the creating key may use it
    got = api.get("/api/2.0/mlflow/experiments/get", experiment_id=experiment.pk).json()
    parsed = proto(got, service_pb2.GetExperiment.Response)
    assert (parsed.experiment.name, parsed.experiment.artifact_location) == (
        "feedback-demo",
        f"mlflow-artifacts:/{experiment.pk}",
    )
    assert api.get("/api/2.0/mlflow/experiments/get-by-name", experiment_name="feedback-demo").status_code == 200
    error(api.post("/api/2.0/mlflow/experiments/create", {"name": "feedback-demo"}), 400, "RESOURCE_ALREADY_EXISTS")
    error(api.get("/api/2.0/mlflow/experiments/get", experiment_id="999999"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert "name" in error(
        api.post("/api/2.0/mlflow/experiments/create", {"name": "x" * 300}), 400, "INVALID_PARAMETER_VALUE"
    )


def test_experiments_of_other_keys_stay_hidden(api):
    hidden = make_experiment("secret")
    # the name is taken (names are unique, as in MLflow): 403, so set_experiment raises (test_experiments.py)
    error(api.get("/api/2.0/mlflow/experiments/get-by-name", experiment_name="secret"), 403, "PERMISSION_DENIED")
    error(api.post("/api/2.0/mlflow/experiments/create", {"name": "secret"}), 400, "RESOURCE_ALREADY_EXISTS")
    error(api.get("/api/2.0/mlflow/experiments/get", experiment_id=hidden.pk), 404, "RESOURCE_DOES_NOT_EXIST")


def test_search_experiments(api, experiment):
    make_experiment("invisible")
    data = api.post("/api/2.0/mlflow/experiments/search", {"max_results": 10}).json()
    assert [e.name for e in proto(data, service_pb2.SearchExperiments.Response).experiments] == ["rag-demo"]
    data = api.post("/api/2.0/mlflow/experiments/search", {"filter": "name LIKE 'rag%'"}).json()
    assert len(data["experiments"]) == 1
    assert "name" in error(
        api.post("/api/2.0/mlflow/experiments/search", {"filter": "tags.x = '1'"}), 400, "INVALID_PARAMETER_VALUE"
    )


# --- trace export: StartTraceV3 and OTLP in either order ---------------------------------------


def test_start_trace_first_then_spans(api, experiment):
    trace_id = new_trace_id()
    response = api.start(trace_id, experiment.pk)
    info = proto(response.json(), service_pb2.StartTraceV3.Response).trace.trace_info
    # No spans yet: no spansLocation, so the real client also uploads traces.json.
    assert "mlflow.trace.spansLocation" not in info.tags
    assert info.tags["mlflow.artifactLocation"] == f"mlflow-artifacts:/{experiment.pk}/traces/{trace_id}/artifacts"
    assert info.tags["mlflow.traceName"] == "answer_question" and info.tags["env"] == "demo"
    assert api.otlp(trace_id, payloads.mlflow_spans(trace_id), experiment.pk).status_code == 200
    trace = Trace.objects.get(pk=trace_id)
    assert (trace.name, trace.state, trace.span_count, trace.execution_time_ms) == ("answer_question", "OK", 2, 68)
    assert trace.request_preview == '{"question": "What is MLflow?"}'  # StartTraceV3's preview wins
    assert trace.tags == {"env": "demo", "app_version": "0.1.0"} and trace.user_id == "user_123"
    info = api.get(f"{V3}/traces/{trace_id}", trace_id=trace_id).json()["trace"]["trace_info"]
    assert info["tags"]["mlflow.trace.spansLocation"] == "TRACKING_STORE"


def test_spans_first_then_start_trace(api, experiment):
    trace_id = new_trace_id()
    assert api.otlp(trace_id, payloads.mlflow_spans(trace_id), experiment.pk).status_code == 200
    trace = Trace.objects.get(pk=trace_id)
    assert (trace.name, trace.span_count) == ("answer_question", 2)  # a complete trace on its own
    response = api.start(trace_id, experiment.pk)
    info = response.json()["trace"]["trace_info"]
    assert info["tags"]["mlflow.trace.spansLocation"] == "TRACKING_STORE"
    assert info["tags"]["env"] == "demo" and info["trace_metadata"]["mlflow.trace.user"] == "user_123"
    assert info["execution_duration"] == "0.068s" and info["request_time"] == "2026-11-26T14:22:28.564Z"
    assert Trace.objects.get(pk=trace_id).span_count == 2 and Span.objects.filter(trace_id=trace_id).count() == 2


def test_children_before_root_and_repeated_exports_merge(api, experiment):
    trace_id = new_trace_id()
    root, child, grandchild = payloads.mlflow_spans(trace_id, 3)
    api.otlp(trace_id, [child], experiment.pk)
    assert Trace.objects.get(pk=trace_id).state == "IN_PROGRESS"
    api.start(trace_id, experiment.pk, num_spans=3)
    api.otlp(trace_id, [grandchild, root], experiment.pk)
    api.otlp(trace_id, [grandchild, root], experiment.pk)  # a retry
    trace = Trace.objects.get(pk=trace_id)
    assert (trace.state, trace.span_count, trace.name) == ("OK", 3, "answer_question")


def test_traces_json_artifact_fallback(api, experiment):
    trace_id = new_trace_id()
    api.start(trace_id, experiment.pk)
    spans = [
        {
            "trace_id": "xlJNn9QSBYv/gKvLDNW6Ww==",
            "span_id": "EW3JTzpWB3o=",
            "parent_span_id": None,
            "name": "answer_question",
            "kind": "SPAN_KIND_INTERNAL",
            "start_time_unix_nano": 1795702948564140009,
            "end_time_unix_nano": 1795702948632720728,
            "events": [],
            "status": {"code": "STATUS_CODE_OK", "message": ""},
            "attributes": {
                "mlflow.traceRequestId": json.dumps(trace_id),
                "mlflow.spanType": '"CHAIN"',
                "app.version": '"0.1.0"',
                "mlflow.spanInputs": '{"question": "What is MLflow?"}',
                "mlflow.spanOutputs": '"MLflow is an open source platform."',
                "mlflow.spanLogLevel": "10",
            },
            "links": [],
        }
    ]
    path = f"/api/2.0/mlflow-artifacts/artifacts/{experiment.pk}/traces/{trace_id}/artifacts/traces.json"
    assert api.put(path, json.dumps({"spans": spans})).status_code == 200
    span = Span.objects.get(trace_id=trace_id)
    assert (span.span_id, span.span_type, span.inputs, span.outputs) == (
        "116dc94f3a56077a",
        "CHAIN",
        {"question": "What is MLflow?"},
        "MLflow is an open source platform.",
    )
    assert span.attributes == {"app.version": "0.1.0", "mlflow.spanLogLevel": 10}
    served = api.get(path).json()["spans"]
    assert served[0]["span_id"] == "EW3JTzpWB3o=" and json.loads(served[0]["attributes"]["mlflow.spanType"]) == "CHAIN"
    assert json.loads(served[0]["attributes"]["mlflow.traceRequestId"]) == trace_id
    error(api.put(path, "not json"), 400, "INVALID_PARAMETER_VALUE")
    error(api.put(path.replace("traces.json", "attachments/x.png"), b"png"), 501, "NOT_IMPLEMENTED")


def test_assessments_inside_start_trace_are_stored_once(api, experiment):
    trace_id = new_trace_id()
    inline = payloads.feedback(
        "inline_check",
        "pass",
        assessment_id="a-a44fe109c0de4a8a9d8e0f1a2b3c4d5e",
        source={"source_type": "CODE", "source_id": "default"},
    )
    api.start(trace_id, experiment.pk, assessments=[inline, {"assessment_name": "broken"}])
    api.start(trace_id, experiment.pk, assessments=[inline])  # the export is retried
    [assessment] = Assessment.objects.filter(trace_id=trace_id)
    assert (assessment.pk, assessment.name, assessment.value, assessment.source_type) == (
        "a-a44fe109c0de4a8a9d8e0f1a2b3c4d5e",
        "inline_check",
        "pass",
        "CODE",
    )
    assert assessment.create_time.isoformat() == "2026-11-26T14:22:33.625000+00:00"  # the client's clock
    assert Revision.objects.get(assessment_id=assessment.pk).channel == "mlflow"


@pytest.mark.parametrize(
    "info, message",
    [
        ({"trace_id": "not-a-trace-id"}, "Invalid trace_id"),
        ({"trace_location": {}}, "trace_location"),
        ({"state": "DONE"}, "Invalid trace state"),
        ({"request_time": "yesterday"}, "'request_time'"),
        ({"execution_duration": "fast"}, "'execution_duration'"),
    ],
)
def test_bad_start_trace_bodies(api, experiment, info, message):
    body = payloads.trace_info(new_trace_id(), experiment.pk)
    body["trace"]["trace_info"].update(info)
    assert message in error(api.post(f"{V3}/traces", body), 400, "INVALID_PARAMETER_VALUE")
    assert not Trace.objects.exists()


def test_start_trace_into_an_invisible_experiment(api):
    other = make_experiment("not-mine")
    error(api.start(new_trace_id(), other.pk), 404, "RESOURCE_DOES_NOT_EXIST")
    error(api.start(new_trace_id(), 424242), 404, "RESOURCE_DOES_NOT_EXIST")


def test_trace_id_of_another_experiment_conflicts(api, experiment):
    trace_id = stored_trace(api, experiment)
    _, raw = make_api_key(make_experiment("elsewhere"))
    other_api = MlflowApi(raw)
    error(other_api.start(trace_id, Experiment.objects.get(name="elsewhere").pk), 409, "RESOURCE_CONFLICT")


# --- reading traces ---------------------------------------------------------------------------


def test_get_trace_info_and_get_trace(api, experiment):
    trace_id = stored_trace(api, experiment, spans=3)
    make_feedback(Trace.objects.get(pk=trace_id), channel="ui")
    info = proto(api.get(f"{V3}/traces/{trace_id}", trace_id=trace_id).json(), service_pb2.GetTraceInfoV3.Response)
    assert [a.assessment_name for a in info.trace.trace_info.assessments] == ["user_satisfaction"]
    assert api.get(f"{V3}/traces/{trace_id}").status_code == 200  # path only, no query string
    data = api.get(f"{V3}/traces/get", trace_id=trace_id, allow_partial="False").json()
    trace = proto(data, service_pb2.GetTrace.Response).trace
    assert [span.name for span in trace.spans] == ["answer_question", "retrieve_docs_2", "retrieve_docs_3"]
    root = trace.spans[0]
    assert root.trace_id.hex() == trace_id[3:] and root.span_id.hex() == span_hex(1) and not root.parent_span_id
    attributes = {kv.key: kv.value for kv in trace.spans[1].attributes}
    assert attributes["mlflow.spanType"].string_value == "RETRIEVER"
    assert attributes["mlflow.traceRequestId"].string_value == trace_id
    assert attributes["retriever.latency_ms"].int_value == 3
    inputs = {kv.key: kv.value for kv in attributes["mlflow.spanInputs"].kvlist_value.values}
    assert inputs["top_k"].int_value == 2 and inputs["query"].string_value == "What is MLflow?"
    assert root.status.code == 1  # STATUS_CODE_OK


def test_get_trace_allow_partial(api, experiment, monkeypatch):
    monkeypatch.setattr(mlflow_protocol, "PARTIAL_RETRY_SECONDS", (0.01,))
    trace_id = new_trace_id()
    api.start(trace_id, experiment.pk, num_spans=3)
    api.otlp(trace_id, payloads.mlflow_spans(trace_id, 3)[:1], experiment.pk)
    message = error(
        api.get(f"{V3}/traces/get", trace_id=trace_id, allow_partial="False"), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    assert message == f"Trace with ID {trace_id} is not fully exported yet, please try again later."
    data = api.get(f"{V3}/traces/get", trace_id=trace_id, allow_partial="True").json()
    assert len(data["trace"]["spans"]) == 1
    api.otlp(trace_id, payloads.mlflow_spans(trace_id, 3)[1:], experiment.pk)
    assert len(api.get(f"{V3}/traces/get", trace_id=trace_id).json()["trace"]["spans"]) == 3


def test_unknown_and_invisible_traces_are_json_404(api, experiment):
    trace_id = new_trace_id()
    message = error(api.get(f"{V3}/traces/{trace_id}", trace_id=trace_id), 404, "RESOURCE_DOES_NOT_EXIST")
    assert message == f"Trace with ID '{trace_id}' not found."
    hidden = make_trace(make_experiment("hidden"))
    error(api.get(f"{V3}/traces/{hidden.pk}"), 404, "RESOURCE_DOES_NOT_EXIST")
    error(api.get(f"{V3}/traces/get", trace_id=hidden.pk), 404, "RESOURCE_DOES_NOT_EXIST")
    error(api.get(f"{V3}/traces/get"), 400, "INVALID_PARAMETER_VALUE")


def test_batch_get_and_batch_get_infos(api, experiment):
    first, second = stored_trace(api, experiment), stored_trace(api, experiment)
    hidden = make_trace(make_experiment("hidden")).pk
    response = api.client.get(
        f"{V3}/traces/batchGet?trace_ids={second}&trace_ids={hidden}&trace_ids={first}", headers=api.headers
    )
    traces = proto(response.json(), service_pb2.BatchGetTraces.Response).traces
    assert [t.trace_info.trace_id for t in traces] == [second, first] and len(traces[0].spans) == 2
    data = api.post(f"{V3}/traces/batchGetInfos", {"trace_ids": [first, "tr-" + "0" * 32]}).json()
    assert [i.trace_id for i in proto(data, service_pb2.BatchGetTraceInfos.Response).trace_infos] == [first]
    error(api.post(f"{V3}/traces/batchGetInfos", {"trace_ids": [1]}), 400, "INVALID_PARAMETER_VALUE")


# --- trace tags ---------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/api/2.0/mlflow", V3])
def test_set_and_delete_trace_tags(api, experiment, prefix):
    trace_id = stored_trace(api, experiment)
    assert api.patch(f"{prefix}/traces/{trace_id}/tags", {"key": "reviewed", "value": "true"}).json() == {}
    assert Trace.objects.get(pk=trace_id).tags["reviewed"] == "true"
    assert api.delete(f"{prefix}/traces/{trace_id}/tags", {"key": "reviewed"}).json() == {}
    assert "reviewed" not in Trace.objects.get(pk=trace_id).tags
    error(
        api.patch(f"{prefix}/traces/{new_trace_id()}/tags", {"key": "k", "value": "v"}), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    assert "key" in error(api.patch(f"{prefix}/traces/{trace_id}/tags", {"value": "v"}), 400, "INVALID_PARAMETER_VALUE")
    error(
        api.patch(f"{prefix}/traces/{trace_id}/tags", {"key": "mlflow.artifactLocation", "value": "x"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )


# --- search -----------------------------------------------------------------------------------


@pytest.fixture
def searchable(api, experiment):
    """Trace A: thumbs up, relevance 0.6, rating 4, tone friendly; B: thumbs down; C: ERROR, thumbs
    down; D: no feedback. Oldest first."""
    ids = {}
    for n, name in enumerate("ABCD"):
        trace_id = new_trace_id()
        spans = payloads.mlflow_spans(trace_id, 2)
        for span in spans:
            span["start"] += n * 10**9
            span["end"] += n * 10**9
        if name == "C":
            spans[0]["status"] = 2
        api.otlp(trace_id, spans, experiment.pk)
        api.start(
            trace_id,
            experiment.pk,
            request_time=f"2026-11-26T14:2{n}:00.000Z",
            state="ERROR" if name == "C" else "OK",
            execution_duration=f"0.{n + 1}s",
            tags={"env": "demo" if name != "D" else "prod", "mlflow.traceName": f"q{name}"},
        )
        ids[name] = trace_id
    values = {
        "A": [("user_satisfaction", True), ("relevance", 0.6), ("rating", 4.0), ("tone", "friendly")],
        "B": [("user_satisfaction", False)],
        "C": [("user_satisfaction", False)],
    }
    for name, items in values.items():
        for assessment_name, value in items:
            assert api.log(ids[name], payloads.feedback(assessment_name, value)).status_code == 200
    return ids


def search(api, experiment, **body):
    response = api.post(
        f"{V3}/traces/search",
        {
            "locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": str(experiment.pk)}}],
            **body,
        },
    )
    assert response.status_code == 200, response.content
    parsed = proto(response.json(), service_pb2.SearchTracesV3.Response)
    return [info.trace_id for info in parsed.traces], parsed.next_page_token


@pytest.mark.parametrize(
    "text, expected",
    [
        ("feedback.user_satisfaction = 'true'", "A"),
        ("feedback.user_satisfaction != 'true'", "CB"),
        ("feedback.user_satisfaction IS NULL", "D"),
        ("feedback.relevance > 0.5 AND feedback.rating > 3", "A"),
        ("feedback.rating = '4.0'", "A"),
        ("feedback.tone = 'friendly'", "A"),
        ("status = 'ERROR'", "C"),
        ("trace.status = 'OK' AND tags.env = 'demo'", "BA"),
        ("tags.`mlflow.traceName` = 'qB'", "B"),
        ("trace.name = 'qB'", "B"),
        ("metadata.`mlflow.trace.user` = 'user_123' AND tags.env = 'prod'", "D"),
        ("span.type = 'RETRIEVER' AND trace.execution_time_ms >= 300", "DC"),
        ("feedback.user_satisfaction = 'true' OR (status = 'ERROR' AND tags.env = 'demo')", "CA"),
    ],
)
def test_search_filters(api, experiment, searchable, text, expected):
    ids, _ = search(api, experiment, filter=text)
    assert ids == [searchable[name] for name in expected]


def test_search_sees_valid_assessments_only(api, experiment, searchable):
    trace_id = searchable["A"]
    [relevance] = Assessment.objects.filter(trace_id=trace_id, name="relevance")
    api.log(trace_id, payloads.feedback("relevance", 0.9, overrides=relevance.pk))
    assert search(api, experiment, filter="feedback.relevance < 0.7")[0] == []
    assert search(api, experiment, filter="feedback.relevance >= 0.9")[0] == [trace_id]


@pytest.mark.parametrize(
    "order_by, expected",
    [
        (None, "DCBA"),
        (["timestamp_ms ASC"], "ABCD"),
        (["execution_time_ms DESC"], "DCBA"),
        (["status ASC", "timestamp_ms ASC"], "CABD"),  # ERROR < OK
        (["name DESC"], "DCBA"),
        (["tags.env ASC"], "CBAD"),  # demo < prod, then the tie-breaker (newest first)
    ],
)
def test_search_order_by(api, experiment, searchable, order_by, expected):
    body = {"order_by": order_by} if order_by else {}
    assert search(api, experiment, **body)[0] == [searchable[name] for name in expected]


def test_search_pages(api, experiment, searchable):
    seen, token = [], None
    for _ in range(3):
        ids, token = search(api, experiment, max_results=3, **({"page_token": token} if token else {}))
        seen += ids
        if not token:
            break
    assert seen == [searchable[name] for name in "DCBA"]
    assert (
        api.post(f"{V3}/traces/search", {"locations": [{"mlflow_experiment": {"experiment_id": "424242"}}]}).json()
        == {}
    )


@pytest.mark.parametrize(
    "body, message",
    [
        ({"max_results": 501}, "Invalid value 501 for parameter 'max_results' supplied"),
        ({"page_token": "%%%"}, "Invalid page token"),
        ({"page_token": "eyJvZmZzZXQiOiAtMX0="}, "Invalid page token"),
        ({"order_by": ["feedback.relevance DESC"]}, "Invalid identifier type 'feedback'"),
        ({"order_by": ["bogus"]}, "Invalid order_by clause 'bogus'"),
        ({"filter": "feedback.user_satisfaction = "}, "Invalid filter"),
        ({"filter": "assessment.x = 'y'"}, "Invalid filter"),
    ],
)
def test_search_bad_requests(api, experiment, searchable, body, message):
    response = api.post(
        f"{V3}/traces/search", {"locations": [{"mlflow_experiment": {"experiment_id": str(experiment.pk)}}], **body}
    )
    assert message in error(response, 400, "INVALID_PARAMETER_VALUE")


def test_search_page_token_of_another_search(api, experiment, searchable):
    _, token = search(api, experiment, max_results=1)
    body = {
        "locations": [{"mlflow_experiment": {"experiment_id": str(experiment.pk)}}],
        "page_token": token,
        "filter": "status = 'OK'",
    }
    assert "a search with other parameters" in error(
        api.post(f"{V3}/traces/search", body), 400, "INVALID_PARAMETER_VALUE"
    )
    assert "locations" in error(api.post(f"{V3}/traces/search", {}), 400, "INVALID_PARAMETER_VALUE")


def test_search_query_count_does_not_grow(api, experiment, django_assert_max_num_queries):
    for _ in range(5):
        trace_id = stored_trace(api, experiment)
        api.log(trace_id, payloads.feedback())
    # key lookup, role, count-free page query, assessments prefetch (+ last_used_at update)
    with django_assert_max_num_queries(6):
        ids, _ = search(api, experiment, max_results=10)
    assert len(ids) == 5


# --- nothing a client sends is a 500 -------------------------------------------------------------


def test_awkward_input_is_never_a_500(api, experiment):
    import base64

    trace_id = stored_trace(api, experiment)
    response = api.patch(f"/api/2.0/mlflow/traces/{trace_id}/tags", {"key": "k", "value": "v\x00"})
    error(response, 400, "INVALID_PARAMETER_VALUE")
    assert "'value' must not contain NUL" in response.json()["message"]
    assert "k" not in Trace.objects.get(pk=trace_id).tags
    error(api.get("/api/2.0/mlflow/experiments/get", experiment_id="9" * 30), 404, "RESOURCE_DOES_NOT_EXIST")
    error(api.get("/api/2.0/mlflow/experiments/get", experiment_id="abc"), 404, "RESOURCE_DOES_NOT_EXIST")
    error(api.start(new_trace_id(), "9" * 30), 404, "RESOURCE_DOES_NOT_EXIST")
    error(api.get(f"{V3}/traces/tr-%00abc"), 404, "RESOURCE_DOES_NOT_EXIST")
    token = base64.b64encode(b'{"offset": 1000000000000000000000}').decode()
    body = {"locations": [{"mlflow_experiment": {"experiment_id": str(experiment.pk)}}], "page_token": token}
    error(api.post(f"{V3}/traces/search", body), 400, "INVALID_PARAMETER_VALUE")
    body = {"locations": [{"mlflow_experiment": {"experiment_id": "9" * 30}}]}
    error(api.post(f"{V3}/traces/search", body), 400, "INVALID_PARAMETER_VALUE")
    response = api.client.post(
        "/v1/traces",
        payloads.otlp_body(new_trace_id(), [{**payloads.mlflow_spans("x", 1)[0], "start": 2**64 - 1}]),
        content_type="application/x-protobuf",
        headers={**api.headers, "x-mlflow-experiment-id": "9" * 30},
    )
    assert response.status_code == 404
    response = api.client.post(
        "/v1/traces",
        payloads.otlp_body(new_trace_id(), [{**payloads.mlflow_spans("x", 1)[0], "end": 2**64 - 1}]),
        content_type="application/x-protobuf",
        headers={**api.headers, "x-mlflow-experiment-id": str(experiment.pk)},
    )
    assert response.status_code == 400 and "year 2262" in response.json()["detail"]


def test_default_experiment_zero_is_the_keys_experiment(api, experiment):
    trace_id = new_trace_id()
    assert api.otlp(trace_id, payloads.mlflow_spans(trace_id), "0").status_code == 200
    assert api.start(trace_id, "0").status_code == 200
    assert Trace.objects.get(pk=trace_id).experiment == experiment
    body = {"locations": [{"mlflow_experiment": {"experiment_id": "0"}}]}
    assert [t["trace_id"] for t in api.post(f"{V3}/traces/search", body).json()["traces"]] == [trace_id]
    _, raw = make_api_key(experiment, make_experiment("second"))
    message = error(MlflowApi(raw).start(new_trace_id(), "0"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert "mlflow.set_experiment" in message
