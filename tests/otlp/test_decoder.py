"""traces.otlp: bodies (protobuf, JSON, gzip, deflate) and the attribute conventions it maps."""

import gzip
import json
import zlib

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from traces import otlp

TRACE = bytes.fromhex("0123456789abcdef0123456789abcdef")
LIMIT = 1024 * 1024


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


def request(*spans, resource=None) -> ExportTraceServiceRequest:
    """spans: dicts with name, span_id (int), parent (int|None), attributes, events, status."""
    message = ExportTraceServiceRequest()
    resource_spans = message.resource_spans.add()
    for key, value in (resource or {"service.name": "checkout"}).items():
        resource_spans.resource.attributes.add(key=key, value=_value(value))
    scope = resource_spans.scope_spans.add()
    for spec in spans:
        span = scope.spans.add()
        span.trace_id = spec.get("trace_id", TRACE)
        span.span_id = spec.get("span_id", 1).to_bytes(8, "big")
        if spec.get("parent"):
            span.parent_span_id = spec["parent"].to_bytes(8, "big")
        span.name = spec.get("name", "step")
        span.kind = spec.get("kind", 1)
        span.start_time_unix_nano = spec.get("start", 1_790_000_000_000_000_000)
        span.end_time_unix_nano = spec.get("end", 1_790_000_000_500_000_000)
        span.status.code = spec.get("status", 1)
        for key, value in spec.get("attributes", {}).items():
            span.attributes.add(key=key, value=_value(value))
        for event in spec.get("events", []):
            proto_event = span.events.add(
                name=event["name"], time_unix_nano=event.get("time", 1_790_000_000_100_000_000)
            )
            for key, value in event.get("attributes", {}).items():
                proto_event.attributes.add(key=key, value=_value(value))
    return message


def decode_one(*spans, **kwargs):
    [trace] = otlp.decode_traces(request(*spans, **kwargs))
    return trace


def test_protobuf_ids_times_status_and_kind():
    trace = decode_one({"span_id": 1, "name": "root"}, {"span_id": 2, "parent": 1, "status": 2, "kind": 3})
    assert trace.trace_id == "tr-0123456789abcdef0123456789abcdef"
    root, child = trace.spans
    assert (root["span_id"], root["parent_span_id"], root["kind"]) == ("0000000000000001", None, "SPAN_KIND_INTERNAL")
    assert (child["parent_span_id"], child["status_code"], child["kind"]) == (
        "0000000000000001",
        "ERROR",
        "SPAN_KIND_CLIENT",
    )
    assert root["start_time_ns"] == 1_790_000_000_000_000_000 and root["end_time_ns"] == 1_790_000_000_500_000_000
    assert trace.tags == {"service.name": "checkout"}


def test_spans_of_several_traces_are_grouped_in_order():
    other = bytes.fromhex("ff" * 16)
    traces = otlp.decode_traces(request({"span_id": 1}, {"span_id": 2, "trace_id": other}, {"span_id": 3, "parent": 1}))
    assert [(t.trace_id[-2:], [s["span_id"][-1] for s in t.spans]) for t in traces] == [
        ("ef", ["1", "3"]),
        ("ff", ["2"]),
    ]


def test_mlflow_attributes_become_columns_and_the_rest_stays():
    trace = decode_one(
        {
            "attributes": {
                "mlflow.traceRequestId": "tr-0123456789abcdef0123456789abcdef",
                "mlflow.spanType": "RETRIEVER",
                "mlflow.spanInputs": {"query": "What is MLflow?", "top_k": 2},
                "mlflow.spanOutputs": ["doc1", "doc2"],
                "retriever.index": "docs-v1",
                "mlflow.traceTag.env": "demo",
            }
        }
    )
    [span] = trace.spans
    assert span["span_type"] == "RETRIEVER"
    assert span["inputs"] == {"query": "What is MLflow?", "top_k": 2}
    assert span["outputs"] == ["doc1", "doc2"]
    assert span["attributes"] == {"retriever.index": "docs-v1", "mlflow.traceTag.env": "demo"}
    assert trace.tags["env"] == "demo"  # root-span trace tags, as MLflow's OTLP path does


def test_mlflow_values_sent_as_json_text_are_decoded():
    [span] = decode_one(
        {
            "attributes": {
                "mlflow.spanType": '"LLM"',
                "mlflow.spanInputs": '{"a": 1}',
                "mlflow.spanOutputs": "plain text",
            }
        }
    ).spans
    assert (span["span_type"], span["inputs"], span["outputs"]) == ("LLM", {"a": 1}, "plain text")


def test_openinference_kind_values_and_messages():
    [llm] = decode_one(
        {
            "attributes": {
                "openinference.span.kind": "LLM",
                "llm.input_messages.0.message.role": "system",
                "llm.input_messages.0.message.content": "Be brief.",
                "llm.input_messages.1.message.role": "user",
                "llm.input_messages.1.message.content": "Hi?",
                "llm.output_messages.0.message.role": "assistant",
                "llm.output_messages.0.message.content": "Hello.",
            }
        }
    ).spans
    assert llm["span_type"] == "LLM"
    assert llm["inputs"] == {
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]
    }
    assert llm["outputs"] == {"messages": [{"role": "assistant", "content": "Hello."}]}
    [chain] = decode_one(
        {
            "attributes": {
                "openinference.span.kind": "CHAIN",
                "input.value": '{"question": "q"}',
                "input.mime_type": "application/json",
                "output.value": "answer",
            }
        }
    ).spans
    assert (chain["span_type"], chain["inputs"], chain["outputs"]) == ("CHAIN", {"question": "q"}, "answer")


@pytest.mark.parametrize(
    "operation, span_type",
    [
        ("chat", "CHAT_MODEL"),
        ("text_completion", "LLM"),
        ("embeddings", "EMBEDDING"),
        ("execute_tool", "TOOL"),
        ("invoke_agent", "AGENT"),
        ("retrieval", "RETRIEVER"),
        ("something_new", "UNKNOWN"),
    ],
)
def test_genai_operation_names(operation, span_type):
    [span] = decode_one({"attributes": {"gen_ai.operation.name": operation}}).spans
    assert span["span_type"] == span_type


def test_genai_message_attributes():
    messages = [{"role": "user", "parts": [{"type": "text", "content": "Hi?"}]}]
    [span] = decode_one(
        {
            "attributes": {
                "gen_ai.operation.name": "chat",
                "gen_ai.input.messages": json.dumps(messages),
                "gen_ai.output.messages": json.dumps(
                    [{"role": "assistant", "parts": [{"type": "text", "content": "Hello."}]}]
                ),
            }
        }
    ).spans
    assert span["inputs"] == messages and span["outputs"][0]["role"] == "assistant"


def test_genai_legacy_prompt_completion_and_indexed_form():
    [span] = decode_one({"attributes": {"gen_ai.prompt": "Say hi", "gen_ai.completion": "hi"}}).spans
    assert (span["inputs"], span["outputs"]) == ("Say hi", "hi")
    [span] = decode_one(
        {
            "attributes": {
                "gen_ai.prompt.0.role": "user",
                "gen_ai.prompt.0.content": "Say hi",
                "gen_ai.completion.0.role": "assistant",
                "gen_ai.completion.0.content": "hi",
            }
        }
    ).spans
    assert span["inputs"] == {"messages": [{"role": "user", "content": "Say hi"}]}
    assert span["outputs"] == {"messages": [{"role": "assistant", "content": "hi"}]}


def test_genai_message_events():
    [span] = decode_one(
        {
            "attributes": {"gen_ai.operation.name": "chat"},
            "events": [
                {"name": "gen_ai.system.message", "attributes": {"content": "Be brief."}},
                {"name": "gen_ai.user.message", "attributes": {"content": "Hi?"}},
                {
                    "name": "gen_ai.choice",
                    "attributes": {"index": 0, "message": '{"role": "assistant", "content": "Hello."}'},
                },
            ],
        }
    ).spans
    assert span["inputs"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]
    assert span["outputs"] == [{"role": "assistant", "content": "Hello."}]
    assert [event["name"] for event in span["events"]] == [
        "gen_ai.system.message",
        "gen_ai.user.message",
        "gen_ai.choice",
    ]


def test_tool_and_retrieval_attributes():
    [tool] = decode_one(
        {
            "attributes": {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.call.arguments": '{"city": "Paris"}',
                "gen_ai.tool.call.result": '{"temp": 21}',
            }
        }
    ).spans
    assert (tool["span_type"], tool["inputs"], tool["outputs"]) == ("TOOL", {"city": "Paris"}, {"temp": 21})


def test_evaluation_events_are_returned_not_kept_as_events():
    trace = decode_one(
        {
            "span_id": 7,
            "events": [
                {
                    "name": "gen_ai.evaluation.result",
                    "time": 1_790_000_001_000_000_000,
                    "attributes": {
                        "gen_ai.evaluation.name": "relevance",
                        "gen_ai.evaluation.score.value": 0.8,
                        "gen_ai.evaluation.score.label": "relevant",
                        "gen_ai.evaluation.explanation": "On topic.",
                    },
                },
                {"name": "exception", "attributes": {"exception.type": "ValueError"}},
            ],
        }
    )
    [evaluation] = trace.evaluations
    assert (evaluation.span_id, evaluation.name, evaluation.value, evaluation.label, evaluation.explanation) == (
        "0000000000000007",
        "relevance",
        0.8,
        "relevant",
        "On topic.",
    )
    assert [event["name"] for event in trace.spans[0]["events"]] == ["exception"]


@pytest.mark.parametrize(
    "attributes, message",
    [
        ({"gen_ai.evaluation.score.value": 1.0}, "needs gen_ai.evaluation.name"),
        ({"gen_ai.evaluation.name": "x"}, "needs gen_ai.evaluation.score.value or gen_ai.evaluation.score.label"),
    ],
)
def test_incomplete_evaluation_events_are_refused(attributes, message):
    with pytest.raises(otlp.OtlpError, match=message):
        decode_one({"events": [{"name": "gen_ai.evaluation.result", "attributes": attributes}]})


def test_root_session_and_user_ids_become_metadata():
    trace = decode_one({"attributes": {"session.id": "sess-1", "user.id": "user_123"}})
    assert trace.metadata == {"mlflow.trace.session": "sess-1", "mlflow.trace.user": "user_123"}


def test_nul_characters_and_non_finite_numbers_are_replaced_and_marked():
    [span] = decode_one(
        {"name": "a\x00b", "attributes": {"k": "v\x00", "score": float("inf"), "nan": float("nan"), "ok": 1.5}}
    ).spans
    assert span["name"] == "a\ufffdb"
    assert span["attributes"] == {
        "k": "v\ufffd",
        "score": "Infinity",
        "nan": "NaN",
        "ok": 1.5,
        "feedbackhub.replaced_values": ["name", "attributes.k", "attributes.score", "attributes.nan"],
    }


def test_wrong_id_lengths_are_refused():
    with pytest.raises(otlp.OtlpError, match="trace_id must be 16 bytes"):
        decode_one({"trace_id": b"\x01" * 8})
    message = request({"span_id": 1})
    message.resource_spans[0].scope_spans[0].spans[0].span_id = b"\x01\x02"
    with pytest.raises(otlp.OtlpError, match="span_id must be 8 bytes"):
        otlp.decode_traces(message)


def test_parse_protobuf_gzip_deflate_and_json():
    message = request({"span_id": 1, "name": "root"})
    raw = message.SerializeToString()
    for body, encoding in [(raw, ""), (gzip.compress(raw), "gzip"), (zlib.compress(raw), "deflate")]:
        assert otlp.parse_export_request(body, otlp.PROTOBUF, encoding, limit=LIMIT) == message
    as_json = json_format.MessageToDict(message)
    span = as_json["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["traceId"], span["spanId"] = TRACE.hex(), "0000000000000001"  # OTLP/JSON ids are hex
    parsed = otlp.parse_export_request(json.dumps(as_json).encode(), otlp.JSON, limit=LIMIT)
    assert otlp.decode_traces(parsed)[0].trace_id == "tr-" + TRACE.hex()


@pytest.mark.parametrize(
    "body, content_type, encoding, status, message",
    [
        (b"\xff\xff\xff", otlp.PROTOBUF, "", 400, "not a valid OTLP"),
        (b"{not json", otlp.JSON, "", 400, "not a valid OTLP"),
        (b"[]", otlp.JSON, "", 400, "must be an ExportTraceServiceRequest object"),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}', otlp.JSON, "", 400, "is not hex"),
        (b"hello", "text/plain", "", 415, "Content-Type 'text/plain' is not supported"),
        (b"not gzip", otlp.PROTOBUF, "gzip", 400, "not valid gzip"),
        (b"x", otlp.PROTOBUF, "br", 415, "Content-Encoding 'br' is not supported"),
        (gzip.compress(b"\x00" * (LIMIT + 10)), otlp.PROTOBUF, "gzip", 413, "larger than"),
    ],
)
def test_bad_bodies(body, content_type, encoding, status, message):
    with pytest.raises(otlp.OtlpError, match=message) as caught:
        otlp.parse_export_request(body, content_type, encoding, limit=LIMIT)
    assert caught.value.status == status
