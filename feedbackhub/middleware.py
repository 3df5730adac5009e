"""Cross-cutting request guards: load-balancer probes, body size limit and database-outage answers."""

import logging

from django.conf import settings
from django.db.utils import InterfaceError, OperationalError
from django.http import JsonResponse

logger = logging.getLogger(__name__)

# Paths whose clients expect MLflow's error shape.
MLFLOW_PREFIXES = ("/api/2.0/", "/api/3.0/", "/ajax-api/")
# Seconds a client should wait before retrying while the database is away.
RETRY_AFTER_SECONDS = 5
DATABASE_ERRORS = (OperationalError, InterfaceError)


def error_response(request, status: int, message: str, mlflow_code: str) -> JsonResponse:
    """A JSON error in the shape the caller's protocol expects (DRF's or MLflow's)."""
    if request.path.startswith(MLFLOW_PREFIXES):
        body = {"error_code": mlflow_code, "message": message}
    else:
        body = {"detail": message}
    return JsonResponse(body, status=status)


def database_unavailable(request, exception: Exception) -> JsonResponse:
    """The fast 503 + Retry-After that replaces an HTML 500 while the database is unreachable."""
    logger.warning(
        "database unavailable on %s %s: %s: %s",
        request.method,
        request.path,
        exception.__class__.__name__,
        str(exception).strip()[:200],
    )
    response = error_response(request, 503, "The database is unavailable; retry shortly.", "TEMPORARILY_UNAVAILABLE")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class RequestGuardMiddleware:
    """Answer /healthz and /readyz before host checks and sessions (probes use any Host header);
    refuse bodies over FEEDBACKHUB_MAX_BODY_BYTES with 413 before anything reads them;
    answer a lost database with a fast JSON 503 + Retry-After instead of an HTML 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path in ("/healthz", "/readyz"):
            from . import views

            return views.healthz(request) if request.path == "/healthz" else views.readyz(request)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.FEEDBACKHUB_MAX_BODY_BYTES
        if length > limit:
            return error_response(
                request, 413, f"The request body is {length} bytes; the limit is {limit} bytes.", "RESOURCE_EXHAUSTED"
            )
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, DATABASE_ERRORS):
            return database_unavailable(request, exception)
        return None
