"""The OpenTelemetry SDK's OTLP/HTTP exporters (protobuf, JSON, gzip) against a live FeedbackHub."""

import gzip
import json
import logging

import pytest
import requests
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import StatusCode

from assessments.models import Assessment, Revision
from traces.models import Span, Trace

from ..factories import make_api_key, make_experiment

pytestmark = pytest.mark.live


def emit(exporter, *, evaluation=True):
    """A chat span under an agent root, the GenAI way, with an evaluation event on the chat span."""
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))  # synchronous: sent before return
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span(
        "answer",
        attributes={
            "gen_ai.operation.name": "invoke_agent",
            "session.id": "sess-9",
            "user.id": "user_9",
            "input.value": '{"question": "What is MLflow?"}',
            "output.value": "A platform.",
        },
    ) as root:
        with tracer.start_as_current_span(
            "chat gpt-4o-mini",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.input.messages": json.dumps(
                    [{"role": "user", "parts": [{"type": "text", "content": "What is MLflow?"}]}]
                ),
                "gen_ai.output.messages": json.dumps(
                    [{"role": "assistant", "parts": [{"type": "text", "content": "A platform."}]}]
                ),
            },
        ) as chat:
            if evaluation:
                chat.add_event(
                    "gen_ai.evaluation.result",
                    {
                        "gen_ai.evaluation.name": "relevance",
                        "gen_ai.evaluation.score.value": 0.9,
                        "gen_ai.evaluation.score.label": "relevant",
                        "gen_ai.evaluation.explanation": "Answers the question.",
                    },
                )
        root.set_status(StatusCode.OK)
    provider.shutdown()
    return "tr-" + format(root.get_span_context().trace_id, "032x"), format(chat.get_span_context().span_id, "016x")


def bearer(raw):
    return {"Authorization": f"Bearer {raw}"}


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_protobuf_exporter(live, key, experiment, compression):
    exporter = OTLPSpanExporter(endpoint=f"{live}/v1/traces", headers=bearer(key[1]), compression=compression)
    trace_id, chat_id = emit(exporter)
    trace = Trace.objects.get(pk=trace_id)
    assert (trace.experiment, trace.name, trace.state, trace.span_count) == (experiment, "answer", "OK", 2)
    assert trace.session_id == "sess-9" and trace.user_id == "user_9" and trace.tags["service.name"] == "checkout"
    assert trace.request_preview == '{"question": "What is MLflow?"}' and trace.response_preview == "A platform."
    root, chat = Span.objects.filter(trace=trace).order_by("start_time_ns")
    assert (root.span_type, root.inputs, root.outputs) == ("AGENT", {"question": "What is MLflow?"}, "A platform.")
    assert chat.span_type == "CHAT_MODEL" and chat.parent_span_id == root.span_id and chat.span_id == chat_id
    assert chat.inputs[0]["parts"][0]["content"] == "What is MLflow?"
    assert chat.attributes["gen_ai.request.model"] == "gpt-4o-mini"


def test_json_exporter(live, key):
    json_http = pytest.importorskip("opentelemetry.exporter.otlp.json.http.trace_exporter")
    trace_id, _ = emit(json_http.OTLPSpanExporter(endpoint=f"{live}/v1/traces", headers=bearer(key[1])))
    # 16-byte trace ids: a hex id read as base64 would give 24 bytes and another id
    assert Trace.objects.filter(pk=trace_id).exists()
    assert Span.objects.filter(trace_id=trace_id).count() == 2


def test_evaluation_event_becomes_feedback_on_its_span(live, key):
    trace_id, chat_id = emit(OTLPSpanExporter(endpoint=f"{live}/v1/traces", headers=bearer(key[1])))
    [feedback] = Assessment.objects.filter(trace_id=trace_id)
    assert (feedback.name, feedback.value, feedback.span_id, feedback.rationale) == (
        "relevance",
        0.9,
        chat_id,
        "Answers the question.",
    )
    assert (feedback.source_type, feedback.source_id, feedback.kind) == ("LLM_JUDGE", "checkout", "feedback")
    assert feedback.metadata == {"gen_ai.evaluation.score.label": "relevant"}
    [revision] = Revision.objects.filter(assessment_id=feedback.pk)
    assert (revision.action, revision.channel) == ("create", "otlp")


def test_reexported_batch_is_idempotent(live, key):
    """A retried export stores the same spans and evaluation once."""
    captured = []

    class Capturing(OTLPSpanExporter):
        def export(self, spans):
            captured.append(encode_spans(spans).SerializePartialToString())
            return super().export(spans)

    trace_id, _ = emit(Capturing(endpoint=f"{live}/v1/traces", headers=bearer(key[1])))
    assert len(captured) == 2  # SimpleSpanProcessor: one request per span
    for body in captured:
        response = requests.post(
            f"{live}/v1/traces", data=body, headers={**bearer(key[1]), "Content-Type": "application/x-protobuf"}
        )
        assert response.status_code == 200
    assert Span.objects.filter(trace_id=trace_id).count() == 2
    assert Assessment.objects.filter(trace_id=trace_id).count() == 1


def test_experiment_from_headers(live, experiment):
    other = make_experiment("second-app")
    _, raw = make_api_key(experiment, other)
    exporter = OTLPSpanExporter(
        endpoint=f"{live}/v1/traces", headers={**bearer(raw), "x-feedbackhub-experiment": "second-app"}
    )
    trace_id, _ = emit(exporter, evaluation=False)
    assert Trace.objects.get(pk=trace_id).experiment == other
    exporter = OTLPSpanExporter(
        endpoint=f"{live}/v1/traces", headers={**bearer(raw), "x-mlflow-experiment-id": str(experiment.pk)}
    )
    trace_id, _ = emit(exporter, evaluation=False)
    assert Trace.objects.get(pk=trace_id).experiment == experiment


def post(live, body, raw, content_type="application/x-protobuf", **headers):
    return requests.post(
        f"{live}/v1/traces", data=body, headers={**bearer(raw), "Content-Type": content_type, **headers}
    )


def test_key_with_several_experiments_must_name_one(live, experiment):
    _, raw = make_api_key(experiment, make_experiment("second-app"))
    response = post(live, b"", raw)
    assert response.status_code == 400 and "x-mlflow-experiment-id" in response.json()["detail"]


@pytest.mark.parametrize(
    "headers, status, text",
    [
        ({"x-mlflow-experiment-id": "999999"}, 404, "Experiment '999999'"),
        ({"x-feedbackhub-experiment": "nope"}, 404, "Experiment 'nope'"),
    ],
)
def test_unknown_experiment(live, key, headers, status, text):
    response = post(live, b"", key[1], **headers)
    assert response.status_code == status and text in response.json()["detail"]


def test_authentication_is_required(live, key):
    assert (
        requests.post(f"{live}/v1/traces", data=b"", headers={"Content-Type": "application/x-protobuf"}).status_code
        == 401
    )
    assert post(live, b"", "fh_not-a-key").status_code == 401


def test_bad_bodies_get_4xx_and_store_nothing(live, key):
    assert post(live, b"\xff\xfe\xfd", key[1]).status_code == 400
    assert post(live, b"{nope", key[1], "application/json").status_code == 400
    assert post(live, b"hi", key[1], "text/plain").status_code == 415
    assert post(live, b"not gzip", key[1], **{"Content-Encoding": "gzip"}).status_code == 400
    # A valid span next to a span whose parent id is malformed: the whole request is refused.
    body = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "0123456789abcdef0123456789abcdef",
                                "spanId": "0000000000000001",
                                "name": "ok",
                                "startTimeUnixNano": "1790000000000000000",
                                "endTimeUnixNano": "1790000000100000000",
                            },
                            {
                                "traceId": "0123456789abcdef0123456789abcdef",
                                "spanId": "0000000000000002",
                                "parentSpanId": "0102",
                                "name": "bad",
                                "startTimeUnixNano": "1790000000000000000",
                            },
                        ]
                    }
                ]
            }
        ]
    }
    response = post(live, json.dumps(body).encode(), key[1], "application/json")
    assert response.status_code == 400 and "parent_span_id" in response.json()["detail"]
    assert not Trace.objects.exists() and not Span.objects.exists()


def test_end_before_start_is_refused_with_the_field(live, key):
    body = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "0123456789abcdef0123456789abcdef",
                                "spanId": "0000000000000001",
                                "name": "x",
                                "startTimeUnixNano": "1790000000100000000",
                                "endTimeUnixNano": "1790000000000000000",
                            },
                        ]
                    }
                ]
            }
        ]
    }
    response = post(
        live, gzip.compress(json.dumps(body).encode()), key[1], "application/json", **{"Content-Encoding": "gzip"}
    )
    assert response.status_code == 400 and "end_time_ns" in response.json()["detail"]
    assert not Trace.objects.exists()


def test_json_response_for_json_requests(live, key):
    body = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "0123456789abcdef0123456789abcdef",
                                "spanId": "0000000000000001",
                                "name": "root",
                                "startTimeUnixNano": "1790000000000000000",
                                "endTimeUnixNano": "1790000000100000000",
                                "attributes": [{"key": "openinference.span.kind", "value": {"stringValue": "LLM"}}],
                            },
                        ]
                    }
                ]
            }
        ]
    }
    response = post(live, json.dumps(body).encode(), key[1], "application/json; charset=utf-8")
    assert response.status_code == 200 and response.json() == {}
    assert Span.objects.get(trace_id="tr-0123456789abcdef0123456789abcdef").span_type == "LLM"


def test_oversized_body_is_refused_before_reading(live, key, settings, caplog):
    settings.FEEDBACKHUB_MAX_BODY_BYTES = 1000
    caplog.set_level(logging.ERROR)
    response = post(live, b"\x00" * 2000, key[1])
    assert response.status_code == 413
