"""DRF plumbing shared by the apps: the exception handler."""
from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    """Translate service exceptions into DRF's error shape, then defer to DRF.

    Django ValidationError → 400 with field errors; an exception carrying
    `http_status` (the services' Conflict → 409, StaleVersion → 412) → that status;
    a missing row → 404.
    """
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, ObjectDoesNotExist):
        exc = Http404(str(exc) or "Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif hasattr(exc, "http_status"):
        response = Response({"detail": str(exc)}, status=exc.http_status)
        current = getattr(exc, "assessment", None)
        if current is not None:
            response["ETag"] = f'"{current.version}"'
        return response
    response = drf_exception_handler(exc, context)
    if isinstance(exc, Http404) and response is not None and str(exc):
        response.data = {"detail": str(exc)}
    if response is not None and response.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        response.data = {"detail": response.data.get("detail", "Method not allowed.")}
    return response
