"""Request bodies as the mlflow 3.18 client sends them (see mlflow-protocol.md), for raw-HTTP tests."""

import json
import uuid

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

START_NS = 1_795_702_948_564_140_009


def new_trace_id() -> str:
    return "tr-" + uuid.uuid4().hex


def span_hex(n: int) -> str:
    return f"{n:016x}"


def trace_info(trace_id: str, experiment_id, *, num_spans: int = 2, assessments=None, **overrides) -> dict:
    """The StartTraceV3 body of a finished trace (no spans)."""
    info = {
        "trace_id": trace_id,
        "client_request_id": "req-user_123-1795702948630",
        "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": str(experiment_id)}},
        "request_time": "2026-11-26T14:22:28.564Z",
        "execution_duration": "0.068s",
        "state": "OK",
        "trace_metadata": {
            "mlflow.trace_schema.version": "3",
            "mlflow.trace.user": "user_123",
            "mlflow.trace.session": "sess-1",
            "mlflow.trace.sizeStats": json.dumps({"total_size_bytes": 3646, "num_spans": num_spans}),
        },
        "tags": {"env": "demo", "app_version": "0.1.0", "mlflow.traceName": "answer_question"},
        "request_preview": '{"question": "What is MLflow?"}',
        "response_preview": '"MLflow is an open source platform for the ML lifecycle."',
    }
    if assessments is not None:
        info["assessments"] = assessments
    info.update(overrides)
    return {"trace": {"trace_info": info}}


def _value(value) -> AnyValue:
    result = AnyValue()
    if isinstance(value, bool):
        result.bool_value = value
    elif isinstance(value, int):
        result.int_value = value
    elif isinstance(value, float):
        result.double_value = value
    elif isinstance(value, str):
        result.string_value = value
    elif isinstance(value, list):
        result.array_value.values.extend(_value(item) for item in value)
    elif isinstance(value, dict):
        result.kvlist_value.values.extend(KeyValue(key=k, value=_value(v)) for k, v in value.items())
    return result


def mlflow_spans(trace_id: str, count: int = 2) -> list[dict]:
    """A CHAIN root `answer_question` and RETRIEVER children, as the mlflow client exports them."""
    spans = [
        {
            "span_id": 1,
            "parent": None,
            "name": "answer_question",
            "start": START_NS,
            "end": START_NS + 68_000_000,
            "attributes": {
                "mlflow.traceRequestId": trace_id,
                "mlflow.spanType": "CHAIN",
                "mlflow.spanInputs": {"question": "What is MLflow?"},
                "mlflow.spanOutputs": "MLflow is an open source platform for the ML lifecycle.",
                "mlflow.spanFunctionName": "answer_question",
                "mlflow.spanLogLevel": 10,
            },
        }
    ]
    for n in range(2, count + 1):
        spans.append(
            {
                "span_id": n,
                "parent": 1,
                "name": f"retrieve_docs_{n}",
                "start": START_NS + n * 1_000_000,
                "end": START_NS + n * 1_000_000 + 700_000,
                "attributes": {
                    "mlflow.traceRequestId": trace_id,
                    "mlflow.spanType": "RETRIEVER",
                    "mlflow.spanInputs": {"query": "What is MLflow?", "top_k": 2},
                    "mlflow.spanOutputs": [{"page_content": "MLflow is open source."}],
                    "retriever.latency_ms": 3,
                    "mlflow.spanLogLevel": 20,
                },
            }
        )
    return spans


def otlp_body(trace_id: str, spans: list[dict]) -> bytes:
    """An ExportTraceServiceRequest (binary protobuf) carrying `spans` of one trace."""
    message = ExportTraceServiceRequest()
    resource_spans = message.resource_spans.add()
    for key, value in {"telemetry.sdk.language": "python", "telemetry.sdk.name": "mlflow"}.items():
        resource_spans.resource.attributes.add(key=key, value=_value(value))
    scope = resource_spans.scope_spans.add()
    for spec in spans:
        span = scope.spans.add()
        span.trace_id = bytes.fromhex(trace_id.removeprefix("tr-"))
        span.span_id = spec["span_id"].to_bytes(8, "big")
        if spec["parent"]:
            span.parent_span_id = spec["parent"].to_bytes(8, "big")
        span.name = spec["name"]
        span.start_time_unix_nano = spec["start"]
        span.end_time_unix_nano = spec["end"]
        span.status.code = spec.get("status", 1)
        for key, value in spec["attributes"].items():
            span.attributes.add(key=key, value=_value(value))
    return message.SerializeToString()


def feedback(name="user_satisfaction", value=True, **extra) -> dict:
    body = {
        "assessment_name": name,
        "source": {"source_type": "HUMAN", "source_id": "user_123"},
        "create_time": "2026-11-26T14:22:33.625Z",
        "last_update_time": "2026-11-26T14:22:33.625Z",
        "feedback": {"value": value},
        "valid": True,
    }
    body.update(extra)
    return body
