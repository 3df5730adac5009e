"""Cross-cutting request guards: load-balancer probes, body size limit and database-outage answers."""

from django.conf import settings

from . import views
from .errors import DATABASE_ERRORS, error_response, respond


class RequestGuardMiddleware:
    """Answer /healthz and /readyz before host checks and sessions (probes use any Host header);
    refuse bodies over FEEDBACKHUB_MAX_BODY_BYTES with 413 before anything reads them;
    answer a lost database with a fast JSON 503 + Retry-After instead of an HTML 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path in ("/healthz", "/readyz"):
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
            return respond(request, exception)
        return None
