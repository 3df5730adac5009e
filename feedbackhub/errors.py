"""The one error translation: an exception → (HTTP status, MLflow error code, message).

Used by the DRF exception handler (feedbackhub.api), the MLflow endpoints
(traces.mlflow_protocol.mlflow_endpoint), the OTLP view and the request guards
(feedbackhub.middleware, feedbackhub.views.server_error). Exceptions name their own answer
with attributes, so no table elsewhere repeats it:

- `http_status` (the services' Conflict 409, StaleVersion 412), optionally `mlflow_code`
  and `mlflow_status` when MLflow answers differently (DuplicateId: RESOURCE_ALREADY_EXISTS, 400);
- `status` + `error_code` + `message` (an MlflowError), or `status` alone (an OtlpError);
- Django's ValidationError (400), PermissionDenied (403), Http404 / DoesNotExist (404), and a
  lost database (503 with Retry-After).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.db.utils import InterfaceError, OperationalError
from django.http import Http404, JsonResponse

logger = logging.getLogger("feedbackhub.middleware")

# Paths whose clients expect MLflow's error shape.
MLFLOW_PREFIXES = ("/api/2.0/", "/api/3.0/", "/ajax-api/")
# Seconds a client should wait before retrying while the database is away.
RETRY_AFTER_SECONDS = 5
DATABASE_ERRORS = (OperationalError, InterfaceError)
# MLflow's error code for each status, where the exception does not name one.
CODE_FOR_STATUS = {
    400: "INVALID_PARAMETER_VALUE",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    405: "ENDPOINT_NOT_FOUND",
    409: "RESOURCE_CONFLICT",
    412: "RESOURCE_CONFLICT",
    413: "RESOURCE_EXHAUSTED",
    429: "REQUEST_LIMIT_EXCEEDED",
    500: "INTERNAL_ERROR",
    503: "TEMPORARILY_UNAVAILABLE",
}
PERMISSION_DENIED = "You do not have permission to perform this action."


@dataclass(frozen=True)
class Answer:
    """How to answer an exception: `status` on the native API and OTLP, `mlflow_status` with
    `mlflow_code` on the MLflow protocol, plus response headers."""

    status: int
    mlflow_code: str
    message: str
    mlflow_status: int
    headers: dict = field(default_factory=dict)


def validation_message(exc: ValidationError) -> str:
    """One line naming every field and its problem."""
    if hasattr(exc, "error_dict"):
        return "; ".join(
            f"{name}: {' '.join(str(m) for m in messages)}" if name != "__all__" else " ".join(str(m) for m in messages)
            for name, messages in exc.message_dict.items()
        )
    return " ".join(exc.messages)


def translate(exc: BaseException) -> Answer | None:
    """The answer to `exc`, or None for an unexpected exception (a bug: let it be a 500)."""
    if isinstance(exc, ValidationError):
        return _answer(400, validation_message(exc))
    if isinstance(exc, PermissionDenied):
        return _answer(403, str(exc) or PERMISSION_DENIED)
    if isinstance(exc, (Http404, ObjectDoesNotExist)):
        return _answer(404, str(exc) or "Not found.")
    if isinstance(exc, DATABASE_ERRORS):
        return _answer(
            503, "The database is unavailable; retry shortly.", headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
        )
    status = getattr(exc, "http_status", None)
    if status is not None:
        current = getattr(exc, "assessment", None)  # StaleVersion: the version to read again
        headers = {"ETag": f'"{current.version}"'} if current is not None else {}
        return Answer(
            status,
            getattr(exc, "mlflow_code", None) or CODE_FOR_STATUS.get(status, "BAD_REQUEST"),
            str(exc),
            getattr(exc, "mlflow_status", None) or status,
            headers,
        )
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        code = getattr(exc, "error_code", None) or CODE_FOR_STATUS.get(status, "INVALID_PARAMETER_VALUE")
        return Answer(status, code, getattr(exc, "message", None) or str(exc), status)
    return None


def _answer(status: int, message: str, headers: dict | None = None) -> Answer:
    return Answer(status, CODE_FOR_STATUS[status], message, status, headers or {})


def error_response(request, status: int, message: str, mlflow_code: str, headers: dict | None = None) -> JsonResponse:
    """A JSON error in the shape the caller's protocol expects (DRF's or MLflow's)."""
    if request.path.startswith(MLFLOW_PREFIXES):
        body = {"error_code": mlflow_code, "message": message}
    else:
        body = {"detail": message}
    response = JsonResponse(body, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def respond(request, exc: BaseException) -> JsonResponse | None:
    """The answer to `exc` in the caller's protocol shape, or None when it is unexpected.
    A lost database is logged (one warning line) as it is answered."""
    answer = translate(exc)
    if answer is None:
        return None
    if isinstance(exc, DATABASE_ERRORS):
        logger.warning(
            "database unavailable on %s %s: %s: %s",
            request.method,
            request.path,
            exc.__class__.__name__,
            str(exc).strip()[:200],
        )
    mlflow = request.path.startswith(MLFLOW_PREFIXES)
    return error_response(
        request, answer.mlflow_status if mlflow else answer.status, answer.message, answer.mlflow_code, answer.headers
    )
