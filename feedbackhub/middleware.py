"""Cross-cutting request guards: body size limit and database-outage answers."""
import logging

from django.conf import settings
from django.db.utils import InterfaceError, OperationalError
from django.http import JsonResponse

logger = logging.getLogger(__name__)

# Paths whose clients expect MLflow's error shape.
MLFLOW_PREFIXES = ("/api/2.0/", "/api/3.0/", "/ajax-api/")


def _error(request, status: int, message: str, mlflow_code: str) -> JsonResponse:
    if request.path.startswith(MLFLOW_PREFIXES):
        body = {"error_code": mlflow_code, "message": message}
    else:
        body = {"detail": message}
    return JsonResponse(body, status=status)


class RequestGuardMiddleware:
    """Refuse bodies over FEEDBACKHUB_MAX_BODY_BYTES with 413 before anything reads them,
    and answer a lost database with a fast JSON 503 + Retry-After instead of an HTML 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.FEEDBACKHUB_MAX_BODY_BYTES
        if length > limit:
            return _error(
                request, 413, f"The request body is {length} bytes; the limit is {limit} bytes.", "RESOURCE_EXHAUSTED"
            )
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, (OperationalError, InterfaceError)):
            logger.warning("database unavailable: %s", exception.__class__.__name__)
            response = _error(request, 503, "The database is unavailable; retry shortly.", "TEMPORARILY_UNAVAILABLE")
            response["Retry-After"] = "5"
            return response
        return None
