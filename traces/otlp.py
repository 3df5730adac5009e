"""OTLP/HTTP trace decoding: an ExportTraceServiceRequest (protobuf or JSON, optionally
gzip/deflate) becomes per-trace keyword arguments for `traces.services.ingest_trace`.

Span type, inputs and outputs are read from whichever convention the producer used,
first match wins:

* MLflow: `mlflow.spanType`, `mlflow.spanInputs`, `mlflow.spanOutputs`;
* OpenInference: `openinference.span.kind`, `input.value` / `output.value`,
  `llm.input_messages.N.message.role|content`, `llm.output_messages.N.message.…`,
  `retrieval.documents.N.document.content|id|score|metadata` (a retriever's output);
* OpenTelemetry GenAI: `gen_ai.operation.name`, `gen_ai.input.messages` /
  `gen_ai.output.messages`, the older `gen_ai.prompt` / `gen_ai.completion` (also
  `gen_ai.prompt.N.role|content`), tool and retrieval attributes, and the message
  events (`gen_ai.user.message`, `gen_ai.choice`, …).

`gen_ai.evaluation.result` span events are returned separately (`DecodedTrace.evaluations`)
so that the assessments app can turn them into feedback; this module writes nothing.
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from dataclasses import dataclass, field
from functools import partial

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from feedbackhub import values

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
CONTENT_TYPES = (PROTOBUF, JSON)

# MLflow span attributes that FeedbackHub keeps in columns (and rebuilds on the way out).
MLFLOW_SPAN_TYPE = "mlflow.spanType"
MLFLOW_INPUTS = "mlflow.spanInputs"
MLFLOW_OUTPUTS = "mlflow.spanOutputs"
MLFLOW_REQUEST_ID = "mlflow.traceRequestId"
MLFLOW_TRACE_TAG_PREFIX = "mlflow.traceTag."
COLUMN_ATTRIBUTES = frozenset({MLFLOW_SPAN_TYPE, MLFLOW_INPUTS, MLFLOW_OUTPUTS, MLFLOW_REQUEST_ID})

EVALUATION_EVENT = "gen_ai.evaluation.result"

OPENINFERENCE_KINDS = {
    "LLM": "LLM",
    "CHAIN": "CHAIN",
    "TOOL": "TOOL",
    "RETRIEVER": "RETRIEVER",
    "EMBEDDING": "EMBEDDING",
    "AGENT": "AGENT",
    "RERANKER": "RERANKER",
    "GUARDRAIL": "GUARDRAIL",
    "EVALUATOR": "EVALUATOR",
    "PROMPT": "CHAIN",
    "UNKNOWN": "UNKNOWN",
}
GENAI_OPERATIONS = {
    "chat": "CHAT_MODEL",
    "text_completion": "LLM",
    "generate_content": "LLM",
    "embeddings": "EMBEDDING",
    "execute_tool": "TOOL",
    "create_agent": "AGENT",
    "invoke_agent": "AGENT",
    "retrieval": "RETRIEVER",
    "invoke_workflow": "CHAIN",
}
GENAI_MESSAGE_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
_INDEXED = re.compile(r"^(?P<prefix>.+?)\.(?P<index>\d+)\.(?P<rest>.+)$")
_ID_KEYS = ("traceId", "spanId", "parentSpanId")
# Span times are stored as signed 64-bit integers.
MAX_TIME_NS = 2**63 - 1


class OtlpError(Exception):
    """The body cannot be decoded; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class Evaluation:
    """One `gen_ai.evaluation.result` event: feedback on the span that carries it."""

    span_id: str
    name: str
    value: object
    label: str | None
    explanation: str | None
    time_unix_nano: int


@dataclass
class DecodedTrace:
    """Everything one request carried for one trace, ready for ingest_trace."""

    trace_id: str
    spans: list[dict] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    evaluations: list[Evaluation] = field(default_factory=list)
    service_name: str | None = None


# --- body ---------------------------------------------------------------------------------------


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """gzip / deflate with a cap on the inflated size, so a small bomb cannot fill memory."""
    encoding = (encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        # RFC 9110 deflate is zlib-wrapped; some senders send raw deflate.
        inflater = zlib.decompressobj(zlib.MAX_WBITS if body[:1] == b"\x78" else -zlib.MAX_WBITS)
    else:
        raise OtlpError(f"Content-Encoding {encoding!r} is not supported; use gzip, deflate or none.", status=415)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error:
        raise OtlpError(f"The body is not valid {encoding} data.") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise OtlpError(f"The decompressed body is larger than {limit} bytes.", status=413)
    return data


def _items(node, *keys) -> list:
    """node[key] for the first key present, when node is an object and the value a list."""
    if not isinstance(node, dict):
        return []
    for key in keys:
        value = node.get(key)
        if value is not None:
            return value if isinstance(value, list) else []
    return []


def _hex_ids_to_base64(data):
    """OTLP/JSON writes ids as hex; protobuf's JSON mapping expects base64 for bytes fields.
    Anything that is not shaped like a request is left for ParseDict to refuse."""
    for resource_spans in _items(data, "resourceSpans", "resource_spans"):
        for scope_spans in _items(resource_spans, "scopeSpans", "scope_spans"):
            for span in _items(scope_spans, "spans"):
                for item in [span, *_items(span, "links")]:
                    if not isinstance(item, dict):
                        continue
                    for key in (*_ID_KEYS, "trace_id", "span_id", "parent_span_id"):
                        value = item.get(key)
                        if isinstance(value, str) and value:
                            try:
                                item[key] = base64.b64encode(bytes.fromhex(value)).decode()
                            except ValueError:
                                raise OtlpError(f"span {key} {value[:40]!r} is not hex") from None
    return data


def parse_export_request(
    body: bytes, content_type: str, content_encoding: str = "", *, limit: int
) -> ExportTraceServiceRequest:
    """Decode an OTLP/HTTP trace export body; raises OtlpError with the status to answer."""
    if content_type not in CONTENT_TYPES:
        raise OtlpError(
            f"Content-Type {content_type or '(none)'!r} is not supported; send {PROTOBUF} or {JSON}.", status=415
        )
    body = _decompress(body, content_encoding, limit)
    message = ExportTraceServiceRequest()
    try:
        if content_type == JSON:
            data = json.loads(body or b"{}")
            if not isinstance(data, dict):
                raise OtlpError("The JSON body must be an ExportTraceServiceRequest object.")
            json_format.ParseDict(_hex_ids_to_base64(data), message, ignore_unknown_fields=True)
        else:
            message.ParseFromString(body)
    except OtlpError:
        raise
    except (DecodeError, json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise OtlpError(f"The body is not a valid OTLP ExportTraceServiceRequest ({exc.__class__.__name__}).") from None
    return message


def export_response(content_type: str, rejected_spans: int = 0, error_message: str = "") -> tuple[bytes, str]:
    """The ExportTraceServiceResponse in the request's encoding: empty when everything was
    stored, else with `partial_success` (the number of spans refused and why)."""
    response = ExportTraceServiceResponse()
    if rejected_spans or error_message:
        response.partial_success.rejected_spans = rejected_spans
        response.partial_success.error_message = error_message
    if content_type == JSON:
        if not (rejected_spans or error_message):
            return b"{}", JSON
        return json_format.MessageToJson(response, indent=None).encode(), JSON
    return response.SerializeToString(), PROTOBUF


# --- values -------------------------------------------------------------------------------------


def any_value(value) -> object:
    """An OTel AnyValue as plain Python (kvlist → dict, array → list, bytes → base64 text)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {item.key: any_value(item.value) for item in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if kind == "double_value":
        return value.double_value  # NaN and ±Infinity are replaced and marked by values.scrubbed_span
    return getattr(value, kind)


# A JSON document sent as a string (OTel attributes can only be primitives) → its value.
_json_document = partial(values.parsed_json, documents_only=True)


def key_values(items) -> dict:
    return {item.key: any_value(item.value) for item in items}


def _indexed_messages(attributes: dict, prefix: str) -> list[dict] | None:
    """`prefix.0.message.role`, `prefix.0.message.content` … → [{"role", "content"}, …]."""
    messages: dict[int, dict] = {}
    for key, value in attributes.items():
        if not key.startswith(prefix + "."):
            continue
        match = _INDEXED.match(key)
        if not match or match["prefix"] != prefix:
            continue
        rest = match["rest"].removeprefix("message.")
        messages.setdefault(int(match["index"]), {})[rest] = value
    if not messages:
        return None
    return [messages[index] for index in sorted(messages)]


def _retrieval_documents(attributes: dict) -> list[dict] | None:
    """OpenInference `retrieval.documents.N.document.content|id|score|metadata` → MLflow's
    retriever output: [{"page_content", "metadata" (with the score), "id"}, …]."""
    documents: dict[int, dict] = {}
    for key, value in attributes.items():
        if not key.startswith("retrieval.documents."):
            continue
        match = _INDEXED.match(key)
        if not match or match["prefix"] != "retrieval.documents":
            continue
        documents.setdefault(int(match["index"]), {})[match["rest"].removeprefix("document.")] = value
    if not documents:
        return None
    result = []
    for index in sorted(documents):
        document = documents[index]
        metadata = _json_document(document.get("metadata"))
        metadata = (
            dict(metadata) if isinstance(metadata, dict) else ({} if metadata is None else {"metadata": metadata})
        )
        if document.get("score") is not None:
            metadata["score"] = document["score"]
        item = {"page_content": document.get("content", ""), "metadata": metadata}
        if document.get("id") is not None:
            item["id"] = str(document["id"])
        result.append(item)
    return result


def _event_messages(events: list[dict]) -> tuple[list[dict] | None, list | None]:
    """GenAI message events: inputs from system/user/assistant/tool messages, outputs from choices."""
    inputs, outputs = [], []
    for event in events:
        attributes = event.get("attributes") or {}
        if event["name"] in GENAI_MESSAGE_EVENTS:
            message = {"role": attributes.get("role") or GENAI_MESSAGE_EVENTS[event["name"]]}
            content = attributes.get("content", attributes.get("body"))
            if content is not None:
                message["content"] = _json_document(content)
            inputs.append(message)
        elif event["name"] == "gen_ai.choice":
            choice = attributes.get("message", attributes.get("body", attributes))
            outputs.append(_json_document(choice))
    return inputs or None, outputs or None


def span_type(attributes: dict) -> str:
    if isinstance(attributes.get(MLFLOW_SPAN_TYPE), str) and attributes[MLFLOW_SPAN_TYPE]:
        return str(_json_document(attributes[MLFLOW_SPAN_TYPE]))[:50]
    kind = attributes.get("openinference.span.kind")
    if isinstance(kind, str) and kind.upper() in OPENINFERENCE_KINDS:
        return OPENINFERENCE_KINDS[kind.upper()]
    operation = attributes.get("gen_ai.operation.name")
    if isinstance(operation, str) and operation.lower() in GENAI_OPERATIONS:
        return GENAI_OPERATIONS[operation.lower()]
    return "UNKNOWN"


def span_inputs(attributes: dict, events: list[dict]):
    if MLFLOW_INPUTS in attributes:
        return _json_document(attributes[MLFLOW_INPUTS])
    if "input.value" in attributes:
        return _json_document(attributes["input.value"])
    messages = _indexed_messages(attributes, "llm.input_messages")
    if messages:
        return {"messages": messages}
    for key in ("gen_ai.input.messages", "gen_ai.tool.call.arguments", "gen_ai.retrieval.query.text"):
        if key in attributes:
            return _json_document(attributes[key])
    if "gen_ai.prompt" in attributes:
        return _json_document(attributes["gen_ai.prompt"])
    messages = _indexed_messages(attributes, "gen_ai.prompt")
    if messages:
        return {"messages": messages}
    return _event_messages(events)[0]


def span_outputs(attributes: dict, events: list[dict]):
    if MLFLOW_OUTPUTS in attributes:
        return _json_document(attributes[MLFLOW_OUTPUTS])
    documents = _retrieval_documents(attributes)
    if documents:
        return documents
    if "output.value" in attributes:
        return _json_document(attributes["output.value"])
    messages = _indexed_messages(attributes, "llm.output_messages")
    if messages:
        return {"messages": messages}
    for key in ("gen_ai.output.messages", "gen_ai.tool.call.result", "gen_ai.retrieval.documents"):
        if key in attributes:
            return _json_document(attributes[key])
    if "gen_ai.completion" in attributes:
        return _json_document(attributes["gen_ai.completion"])
    messages = _indexed_messages(attributes, "gen_ai.completion")
    if messages:
        return {"messages": messages}
    return _event_messages(events)[1]


# --- spans --------------------------------------------------------------------------------------

_STATUS = {0: "UNSET", 1: "OK", 2: "ERROR"}
_KINDS = {
    0: "",
    1: "SPAN_KIND_INTERNAL",
    2: "SPAN_KIND_SERVER",
    3: "SPAN_KIND_CLIENT",
    4: "SPAN_KIND_PRODUCER",
    5: "SPAN_KIND_CONSUMER",
}


def _evaluation(span_id: str, event: dict) -> Evaluation | None:
    attributes = event.get("attributes") or {}
    name = attributes.get("gen_ai.evaluation.name")
    value = attributes.get("gen_ai.evaluation.score.value")
    label = attributes.get("gen_ai.evaluation.score.label")
    if not isinstance(name, str) or not name.strip():
        raise OtlpError(f"span {span_id}: a {EVALUATION_EVENT} event needs gen_ai.evaluation.name")
    if value is None and label is None:
        raise OtlpError(
            f"span {span_id}: the {EVALUATION_EVENT} event {name!r} needs gen_ai.evaluation.score.value "
            "or gen_ai.evaluation.score.label"
        )
    explanation = attributes.get("gen_ai.evaluation.explanation")
    # Part of an export the app cannot correct: hostile values are replaced, as in span payloads.
    return Evaluation(
        span_id=span_id,
        name=values.scrubbed(name.strip()),
        value=values.scrubbed(value),
        label=None if label is None else values.scrubbed(str(label)),
        explanation=None if explanation is None else values.scrubbed(str(explanation)),
        time_unix_nano=event["time_unix_nano"],
    )


def _span(proto, trace: DecodedTrace) -> dict:
    if len(proto.span_id) != 8:
        raise OtlpError(f"span {proto.name!r} in trace {trace.trace_id}: span_id must be 8 bytes")
    span_id = proto.span_id.hex()
    if proto.parent_span_id and len(proto.parent_span_id) != 8:
        raise OtlpError(f"span {span_id}: parent_span_id must be 8 bytes")
    if max(proto.start_time_unix_nano, proto.end_time_unix_nano) > MAX_TIME_NS:
        raise OtlpError(f"span {span_id}: start/end time is beyond {MAX_TIME_NS} ns (year 2262)")
    attributes = key_values(proto.attributes)
    events = [
        {"name": event.name, "time_unix_nano": event.time_unix_nano, "attributes": key_values(event.attributes)}
        for event in proto.events
    ]
    for event in events:
        if event["name"] == EVALUATION_EVENT:
            trace.evaluations.append(_evaluation(span_id, event))
    span = {
        "span_id": span_id,
        "parent_span_id": proto.parent_span_id.hex() or None,
        "name": proto.name[:250],
        "span_type": span_type(attributes),
        "kind": _KINDS.get(proto.kind, ""),
        "start_time_ns": proto.start_time_unix_nano,
        "end_time_ns": proto.end_time_unix_nano or None,
        "status_code": _STATUS.get(proto.status.code, "UNSET"),
        "status_message": proto.status.message,
        "inputs": span_inputs(attributes, events),
        "outputs": span_outputs(attributes, events),
        "attributes": {key: value for key, value in attributes.items() if key not in COLUMN_ATTRIBUTES},
        "events": [event for event in events if event["name"] != EVALUATION_EVENT],
    }
    if not span["parent_span_id"]:
        _lift_root(span, attributes, trace)
    return values.scrubbed_span(span)


def _lift_root(span: dict, attributes: dict, trace: DecodedTrace) -> None:
    """Trace-level facts a root span carries: MLflow's `mlflow.traceTag.*`, session and user ids."""
    for key, value in attributes.items():
        if key.startswith(MLFLOW_TRACE_TAG_PREFIX) and len(key) > len(MLFLOW_TRACE_TAG_PREFIX):
            trace.tags[key[len(MLFLOW_TRACE_TAG_PREFIX) :][:250]] = str(_json_document(value))
    session = attributes.get("session.id") or attributes.get("gen_ai.conversation.id")
    if isinstance(session, (str, int)) and str(session):
        trace.metadata["mlflow.trace.session"] = str(session)[:250]
    user = attributes.get("user.id") or attributes.get("enduser.id")
    if isinstance(user, (str, int)) and str(user):
        trace.metadata["mlflow.trace.user"] = str(user)[:250]


def decode_traces(message: ExportTraceServiceRequest) -> list[DecodedTrace]:
    """Group the request's spans by trace (`tr-` + the hex OTel trace id), in order of appearance.

    Raises OtlpError for ids of the wrong length; nothing is decoded partially.
    """
    traces: dict[str, DecodedTrace] = {}
    for resource_spans in message.resource_spans:
        resource = key_values(resource_spans.resource.attributes)
        service = resource.get("service.name")
        service = str(service) if service and not str(service).startswith("unknown_service") else None
        for scope_spans in resource_spans.scope_spans:
            for proto in scope_spans.spans:
                if len(proto.trace_id) != 16:
                    raise OtlpError(f"span {proto.name!r}: trace_id must be 16 bytes (got {len(proto.trace_id)})")
                trace_id = "tr-" + proto.trace_id.hex()
                trace = traces.setdefault(trace_id, DecodedTrace(trace_id=trace_id))
                if service and trace.service_name is None:
                    trace.service_name = service[:250]
                    trace.tags.setdefault("service.name", service[:250])
                trace.spans.append(_span(proto, trace))
    for trace in traces.values():
        trace.tags, trace.metadata = values.scrubbed(trace.tags), values.scrubbed(trace.metadata)
    return list(traces.values())
