"""OTLP/HTTP trace ingestion at /v1/traces (protobuf or JSON, gzip/deflate).

Any OpenTelemetry exporter, and the mlflow client's span export, post here with
`Authorization: Bearer <api key>`. The experiment comes from `x-mlflow-experiment-id`,
from `x-feedbackhub-experiment` (a name or an id), or from the key's only experiment.
Spans are decoded by `traces.otlp` and stored through `traces.services.ingest_export`,
all traces of one request in one transaction (a bad body stores nothing; a trace whose id
another experiment holds is refused alone and reported in `partial_success`).
`gen_ai.evaluation.result` events become feedback on their span, which is why this
view lives in the assessments app.
"""

from __future__ import annotations

import hashlib
import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from feedbackhub.errors import DATABASE_ERRORS, translate
from traces import mlflow_protocol as protocol
from traces import otlp
from traces import services as trace_services
from traces.access import Actor
from traces.models import Experiment, Trace

from . import services
from .definitions import enforce as definitions
from .models import Assessment

logger = logging.getLogger(__name__)

CHANNEL = "otlp"
EXPERIMENT_ID_HEADER = "x-mlflow-experiment-id"
EXPERIMENT_HEADER = "x-feedbackhub-experiment"


class _Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _experiment(request, actor: Actor) -> Experiment:
    """The experiment named by the headers, else the key's only one (traces.services.experiment_for_ingest)."""
    experiment_id = request.headers.get(EXPERIMENT_ID_HEADER, "").strip()
    if experiment_id:
        return trace_services.experiment_for_ingest(actor, experiment_id=experiment_id, field=EXPERIMENT_ID_HEADER)
    wanted = request.headers.get(EXPERIMENT_HEADER, "").strip()
    if wanted:
        return trace_services.experiment_for_ingest(actor, name=wanted, field=EXPERIMENT_HEADER)
    try:
        return trace_services.experiment_for_ingest(actor, field=EXPERIMENT_ID_HEADER)
    except ValidationError:
        raise _Refused(
            400,
            f"Which experiment? Send {EXPERIMENT_ID_HEADER}: <id> or {EXPERIMENT_HEADER}: <name or id> "
            "(not needed when the API key is scoped to one experiment).",
        ) from None


def evaluation_id(trace_id: str, evaluation: otlp.Evaluation) -> str:
    """A stable assessment id per event, so a re-exported batch does not log it twice."""
    digest = hashlib.sha256(
        f"{trace_id}/{evaluation.span_id}/{evaluation.name}/{evaluation.time_unix_nano}".encode()
    ).hexdigest()
    return "a-" + digest[:32]


def _log_evaluations(trace: Trace, decoded: otlp.DecodedTrace, actor: Actor) -> list[str]:
    """Write the trace's evaluation events as feedback; returns why events were refused by the
    experiment's definitions (their spans are stored all the same)."""
    refused = []
    known = (
        set(Assessment.objects.filter(trace_id=trace.pk).values_list("pk", flat=True)) if decoded.evaluations else ()
    )
    for evaluation in decoded.evaluations:
        assessment_id = evaluation_id(trace.pk, evaluation)
        if assessment_id in known:
            continue
        value = evaluation.value if evaluation.value is not None else evaluation.label
        metadata = (
            {"gen_ai.evaluation.score.label": evaluation.label}
            if evaluation.label is not None and evaluation.value is not None
            else {}
        )
        try:
            definitions.definition_version(
                trace.experiment_id, kind=Assessment.Kind.FEEDBACK, name=evaluation.name, value=value
            )
        except ValidationError as exc:
            reason = f"{trace.pk} span {evaluation.span_id}: " + "; ".join(exc.messages)
            logger.warning("otlp: evaluation event refused by its definition: %s", reason)
            refused.append(reason)
            continue
        services.log_feedback(
            trace=trace,
            name=evaluation.name,
            value=value,
            rationale=evaluation.explanation or "",
            source_type=Assessment.SourceType.LLM_JUDGE,
            source_id=decoded.service_name or "otlp",
            span_id=evaluation.span_id,
            metadata=metadata,
            actor=actor,
            channel=CHANNEL,
            assessment_id=assessment_id,
            create_time=protocol.parse_timestamp(evaluation.time_unix_nano // 1_000_000, "time_unix_nano")
            if evaluation.time_unix_nano
            else None,
        )
    return refused


def _error(status: int, message: str, code: str) -> JsonResponse:
    # MLflow's /v1/traces (FastAPI) answers {"detail": …}; error_code helps the mlflow client.
    return JsonResponse({"detail": message, "error_code": code, "message": message}, status=status)


@csrf_exempt
def otlp_traces(request):
    """POST /v1/traces: store the spans of every trace in the request, or nothing when the body
    is bad. A trace whose id another experiment holds is left out and reported in
    `partial_success` (rejected_spans, error_message); the others are stored."""
    if request.method != "POST":
        return _error(405, "Use POST with an OTLP ExportTraceServiceRequest.", "INVALID_PARAMETER_VALUE")
    try:
        actor = protocol.request_actor(request)
        experiment = _experiment(request, actor)
        message = otlp.parse_export_request(
            request.body,
            request.content_type,
            request.headers.get("Content-Encoding", ""),
            limit=settings.FEEDBACKHUB_MAX_BODY_BYTES,
        )
        decoded = {item.trace_id: item for item in otlp.decode_traces(message)}
        refused = []  # evaluation events outside a definition: the spans are stored, the feedback is not
        result = trace_services.ingest_export(
            experiment=experiment,
            actor=actor,
            channel=CHANNEL,
            traces=[
                {"trace_id": item.trace_id, "spans": item.spans, "tags": item.tags, "metadata": item.metadata}
                for item in decoded.values()
            ],
            each=lambda trace, item: refused.extend(_log_evaluations(trace, decoded[item["trace_id"]], actor)),
        )
    except Exception as exc:
        # the one translation (feedbackhub.errors); a lost database is the middleware's 503
        answer = None if isinstance(exc, DATABASE_ERRORS) else translate(exc)
        if answer is None:
            raise
        return _error(answer.status, answer.message, answer.mlflow_code)
    if result.refused:
        logger.info("otlp: refused %d trace(s) whose id is taken: %s", len(result.refused), result.error_message)
    # OTLP's partial_success reports both: traces refused whole, and evaluation feedback refused
    # while its spans were stored (no span rejected for that).
    messages = [result.error_message] if result.error_message else []
    if refused:
        messages.append(f"{len(refused)} evaluation event(s) refused: " + " | ".join(refused))
    body, content_type = otlp.export_response(request.content_type, result.rejected_spans, "; ".join(messages))
    return HttpResponse(body, content_type=content_type)
