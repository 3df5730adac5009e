"""Project-level views: load-balancer probes, the guarded login page and the 500 handler.

/healthz answers while the process runs; /readyz also needs the database. Both are
served by RequestGuardMiddleware before host checks, sessions and SSL redirects.
"""

import sys

from django.contrib.auth import views as auth_views
from django.db import connection
from django.db.utils import DatabaseError
from django.http import JsonResponse
from django.views import defaults
from django.views.decorators.http import require_GET

from .errors import DATABASE_ERRORS, RETRY_AFTER_SECONDS, error_response, respond
from .security import GuardedAuthenticationForm

API_PREFIXES = ("/api/", "/v1/", "/ajax-api/")


@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request):
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        response = JsonResponse({"status": "unavailable", "detail": f"database: {exc.__class__.__name__}"}, status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    return JsonResponse({"status": "ok"})


class LoginView(auth_views.LoginView):
    """Django's login view with brute-force protection (feedbackhub.security): a locked-out
    username+address pair gets the form back with status 429 and Retry-After."""

    form_class = GuardedAuthenticationForm

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.locked_for:
            response.status_code = 429
            response["Retry-After"] = str(form.locked_for)
        return response


login = LoginView.as_view()


def server_error(request, *args, **kwargs):
    """handler500: a lost database anywhere (middleware included) is a JSON 503 with
    Retry-After; other failures are a JSON 500 on API paths and the 500 page elsewhere."""
    exception = sys.exc_info()[1]
    if isinstance(exception, DATABASE_ERRORS):
        return respond(request, exception)
    if request.path.startswith(API_PREFIXES):
        return error_response(request, 500, "Server error.", "INTERNAL_ERROR")
    return defaults.server_error(request)
