"""The ingest surfaces (native POST /api/v1/traces, MLflow StartTraceV3 and traces.json upload,
OTLP /v1/traces) share one experiment resolver and one answer for trace ids of other experiments.

- An experiment created a moment ago through another worker (whose cached key scope does not
  know it yet) is written to at once, on every surface.
- Another experiment's trace id reads exactly like a missing one; an export containing it stores
  every other trace and reports the refused one (OTLP partial_success, one error on single calls).
"""

import json

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from rest_framework.test import APIClient

from traces import services
from traces.access import Actor
from traces.models import ApiKey, Span, Trace

from ..factories import make_api_key, make_experiment, make_spans
from ..mlflow import payloads
from ..mlflow.payloads import new_trace_id
from ..mlflow.rawapi import V3, MlflowApi, error

pytestmark = pytest.mark.django_db


@pytest.fixture
def key(experiment, settings):
    settings.FEEDBACKHUB_API_KEY_CACHE_SECONDS = 60
    return make_api_key(experiment)


def created_elsewhere(api_key: ApiKey, name: str):
    """What another gunicorn worker does for the key: create an experiment. This process's
    cached copy of the key's scope (traces.authentication) does not know it."""
    return services.create_experiment(name=name, actor=Actor.for_key(ApiKey.objects.get(pk=api_key.pk)))


def artifact_path(experiment_id, trace_id: str) -> str:
    return f"/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/traces/{trace_id}/artifacts/traces.json"


def traces_json(trace_id: str) -> str:
    span = {
        "span_id": "EW3JTzpWB3o=",
        "parent_span_id": None,
        "name": "answer_question",
        "start_time_unix_nano": payloads.START_NS,
        "end_time_unix_nano": payloads.START_NS + 1_000_000,
        "status": {"code": "STATUS_CODE_OK", "message": ""},
        "attributes": {"mlflow.traceRequestId": json.dumps(trace_id), "mlflow.spanType": '"CHAIN"'},
    }
    return json.dumps({"spans": [span]})


def native(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


# --- a new experiment is visible at once ------------------------------------------------------


def test_every_ingest_surface_writes_to_an_experiment_created_through_another_worker(key, experiment):
    api_key, raw = key
    api = MlflowApi(raw)
    assert api.get(f"{V3}/traces/{new_trace_id()}").status_code == 404  # the key's scope is now cached
    fresh = [created_elsewhere(api_key, f"new-{n}") for n in range(4)]

    otlp_id, start_id, upload_id, native_id = (new_trace_id() for _ in range(4))
    assert api.otlp(otlp_id, payloads.mlflow_spans(otlp_id), fresh[0].pk).status_code == 200
    assert api.start(start_id, fresh[1].pk).status_code == 200
    assert api.put(artifact_path(fresh[2].pk, upload_id), traces_json(upload_id)).status_code == 200
    response = native(raw).post(
        "/api/v1/traces", {"trace_id": native_id, "experiment_id": fresh[3].pk, "spans": make_spans(1)}, format="json"
    )
    assert response.status_code == 201, response.content
    stored = dict(Trace.objects.values_list("trace_id", "experiment_id"))
    assert stored == {otlp_id: fresh[0].pk, start_id: fresh[1].pk, upload_id: fresh[2].pk, native_id: fresh[3].pk}


def test_otlp_finds_a_new_experiment_by_name(key):
    api_key, raw = key
    api = MlflowApi(raw)
    assert api.get(f"{V3}/traces/{new_trace_id()}").status_code == 404
    fresh = created_elsewhere(api_key, "by-name")
    trace_id = new_trace_id()
    response = api.client.post(
        "/v1/traces",
        payloads.otlp_body(trace_id, payloads.mlflow_spans(trace_id)),
        content_type="application/x-protobuf",
        headers={**api.headers, "x-feedbackhub-experiment": "by-name"},
    )
    assert response.status_code == 200 and Trace.objects.get().experiment == fresh


def test_mlflow_get_by_name_sees_a_new_experiment_at_once(key):
    api_key, raw = key
    api = MlflowApi(raw)
    assert api.get(f"{V3}/traces/{new_trace_id()}").status_code == 404
    fresh = created_elsewhere(api_key, "just-made")
    response = api.get("/api/2.0/mlflow/experiments/get-by-name", experiment_name="just-made")
    assert response.status_code == 200 and response.json()["experiment"]["experiment_id"] == str(fresh.pk)


def test_an_experiment_the_key_cannot_see_stays_invisible_after_the_reload(key):
    _, raw = key
    hidden = make_experiment("hidden")
    api = MlflowApi(raw)
    trace_id = new_trace_id()
    missing = api.otlp(trace_id, payloads.mlflow_spans(trace_id), 987654)
    refused = api.otlp(trace_id, payloads.mlflow_spans(trace_id), hidden.pk)
    assert missing.status_code == refused.status_code == 404
    assert missing.json()["detail"].replace("987654", "N") == refused.json()["detail"].replace(str(hidden.pk), "N")
    error(api.start(trace_id, hidden.pk), 404, "RESOURCE_DOES_NOT_EXIST")
    assert not Trace.objects.exists()


# --- trace ids of other experiments -----------------------------------------------------------


@pytest.fixture
def squatted(experiment):
    """A trace id stored in another experiment that the `key` cannot see."""
    other = make_experiment("someone-else")
    trace, _ = services.ingest_trace(
        experiment=other, actor=Actor.for_system("test"), channel="api", trace_id=new_trace_id(), spans=make_spans(2)
    )
    return trace


def test_another_experiments_trace_reads_exactly_like_a_missing_one(key, squatted, experiment):
    _, raw = key
    api = MlflowApi(raw)
    missing = new_trace_id()
    for path in (
        f"{V3}/traces/{{}}",
        f"{V3}/traces/get?trace_id={{}}",
        artifact_path(experiment.pk, "{}"),
        "/api/v1/traces/{}",
    ):
        answers = [api.get(path.format(trace_id)) for trace_id in (missing, squatted.pk)]
        assert answers[0].status_code == answers[1].status_code == 404, path
        assert answers[0].content.decode().replace(missing, "ID") == answers[1].content.decode().replace(
            squatted.pk, "ID"
        ), path


def test_an_otlp_export_stores_every_trace_but_the_one_whose_id_is_taken(key, squatted, experiment):
    _, raw = key
    ids = sorted([new_trace_id() for _ in range(5)] + [squatted.pk])
    message = payloads.ExportTraceServiceRequest()
    for trace_id in ids:
        message.MergeFromString(payloads.otlp_body(trace_id, payloads.mlflow_spans(trace_id, 3)))
    response = MlflowApi(raw).client.post(
        "/v1/traces",
        message.SerializeToString(),
        content_type="application/x-protobuf",
        headers={"Authorization": f"Bearer {raw}", "x-mlflow-experiment-id": str(experiment.pk)},
    )
    assert response.status_code == 200
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 3
    assert squatted.pk in answer.partial_success.error_message
    assert "someone-else" not in answer.partial_success.error_message
    assert str(squatted.experiment_id) not in answer.partial_success.error_message.replace(squatted.pk, "")
    assert set(Trace.objects.filter(experiment=experiment).values_list("pk", flat=True)) == set(ids) - {squatted.pk}
    assert Span.objects.filter(trace_id=squatted.pk).count() == 2  # the other experiment's spans are untouched


def test_otlp_json_partial_success(key, squatted, experiment):
    _, raw = key
    trace_id = squatted.pk.removeprefix("tr-")
    body = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": "00000000000000aa",
                                "name": "x",
                                "startTimeUnixNano": "1795702948564140009",
                                "endTimeUnixNano": "1795702948564140010",
                            }
                        ]
                    }
                ]
            }
        ]
    }
    response = MlflowApi(raw).client.post(
        "/v1/traces",
        json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}", "x-mlflow-experiment-id": str(experiment.pk)},
    )
    assert response.status_code == 200
    assert response.json()["partialSuccess"]["rejectedSpans"] == "1"
    assert squatted.pk in response.json()["partialSuccess"]["errorMessage"]


def test_single_trace_calls_with_a_taken_id_get_one_error_that_names_no_experiment(key, squatted, experiment):
    _, raw = key
    api = MlflowApi(raw)
    messages = [
        error(api.start(squatted.pk, experiment.pk), 409, "RESOURCE_CONFLICT"),
        error(api.put(artifact_path(experiment.pk, squatted.pk), traces_json(squatted.pk)), 409, "RESOURCE_CONFLICT"),
    ]
    response = native(raw).post("/api/v1/traces", {"trace_id": squatted.pk, "spans": make_spans(1)}, format="json")
    assert response.status_code == 409
    messages.append(response.json()["detail"])
    for message in messages:
        assert "already in use" in message and "someone-else" not in message
        assert f"experiment {squatted.experiment_id}" not in message
    assert Trace.objects.get(pk=squatted.pk).experiment_id == squatted.experiment_id
    assert Span.objects.filter(trace_id=squatted.pk).count() == 2


def test_a_key_that_sees_both_experiments_is_told_where_the_id_is(experiment, squatted):
    _, raw = make_api_key(experiment, squatted.experiment)
    response = native(raw).post(
        "/api/v1/traces",
        {"trace_id": squatted.pk, "experiment_id": experiment.pk, "spans": make_spans(1)},
        format="json",
    )
    assert response.status_code == 409 and f"experiment {squatted.experiment_id}" in response.json()["detail"]


# --- oversized spans --------------------------------------------------------------------------


def test_an_oversized_span_over_otlp_and_traces_json_is_stored_truncated(key, experiment, settings):
    settings.FEEDBACKHUB_MAX_SPAN_BYTES = 2000
    _, raw = key
    api = MlflowApi(raw)
    trace_id = new_trace_id()
    spans = payloads.mlflow_spans(trace_id, 2)
    spans[1]["attributes"]["mlflow.spanOutputs"] = [{"page_content": "é" * 5000}]
    spans[1]["attributes"]["raw_html"] = "<p>" * 2000
    assert api.otlp(trace_id, spans, experiment.pk).status_code == 200
    span = Span.objects.get(trace_id=trace_id, span_id="0000000000000002")
    assert span.outputs.startswith('[{"page_content": "ééé') and span.outputs.endswith("[truncated by FeedbackHub]")
    cut = span.attributes["feedbackhub.truncated"]
    assert set(cut) == {"outputs", "attributes.raw_html"} and cut["attributes.raw_html"] == len(
        json.dumps("<p>" * 2000)
    )
    assert span.attributes["raw_html"].endswith("[truncated by FeedbackHub]")
    assert len(json.dumps([span.inputs, span.outputs, span.attributes, span.events])) <= 2000

    upload_id = new_trace_id()
    assert api.start(upload_id, experiment.pk, num_spans=1).status_code == 200
    body = json.loads(traces_json(upload_id))
    body["spans"][0]["attributes"]["mlflow.spanInputs"] = json.dumps({"question": "q" * 5000})
    assert api.put(artifact_path(experiment.pk, upload_id), json.dumps(body)).status_code == 200
    span = Span.objects.get(trace_id=upload_id)
    assert span.inputs.startswith('{"question": "qqq') and span.attributes["feedbackhub.truncated"] == {
        "inputs": len(json.dumps({"question": "q" * 5000}))
    }
    # The client reads the truncated span back.
    served = api.get(f"{V3}/traces/get", trace_id=upload_id).json()["trace"]["spans"][0]
    assert any(item["key"] == "feedbackhub.truncated" for item in served["attributes"])


def test_feedback_on_another_experiments_trace_answers_like_feedback_on_a_missing_one(key, squatted):
    _, raw = key
    client = native(raw)
    body = {"name": "user_satisfaction", "value": True}
    missing = client.post(f"/api/v1/traces/{new_trace_id()}/feedback", body, format="json")
    other = client.post(f"/api/v1/traces/{squatted.pk}/feedback", body, format="json")
    assert missing.status_code == other.status_code == 201  # both held until their trace arrives
    api = MlflowApi(raw)
    answers = [api.log(trace_id, payloads.feedback()) for trace_id in (new_trace_id(), squatted.pk)]
    assert answers[0].status_code == answers[1].status_code == 200
    assert not squatted.assessments.exists()
