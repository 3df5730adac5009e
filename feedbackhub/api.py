"""DRF plumbing shared by the apps: the JSON parser, the exception handler, the API key's
OpenAPI security scheme and the documented error responses."""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import exceptions, parsers, serializers, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler

from .errors import translate

# Deeper JSON is refused: Python's recursion limit would otherwise turn it into a 500 somewhere
# between parsing, validation and the database adapter.
MAX_JSON_DEPTH = 128


def json_depth_exceeds(value, limit: int) -> bool:
    """Whether a parsed JSON value nests deeper than `limit` (walked level by level: each
    level is one list comprehension over the containers of the one above)."""
    level, depth = [value], 1
    while level:
        if depth > limit:
            return True
        below = []
        for item in level:
            children = item.values() if type(item) is dict else item
            below += [child for child in children if type(child) is dict or type(child) is list]
        level, depth = below, depth + 1
    return False


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser (strict: no NaN or Infinity) with a nesting limit."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            data = None
            too_deep = True
        else:
            too_deep = isinstance(data, (dict, list)) and json_depth_exceeds(data, MAX_JSON_DEPTH)
        if too_deep:
            raise exceptions.ParseError(f"JSON parse error - nested more than {MAX_JSON_DEPTH} levels deep")
        return data


def exception_handler(exc, context):
    """Translate service exceptions (feedbackhub.errors.translate) into DRF's error shape,
    then defer to DRF for its own. Django ValidationError → 400 with field errors
    (`{"field": ["problem"]}`); the others → their status with `{"detail": message}`.
    """
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif not isinstance(exc, exceptions.APIException):
        answer = translate(exc)
        if answer is not None:
            return Response({"detail": answer.message}, status=answer.status, headers=answer.headers)
    response = drf_exception_handler(exc, context)
    if response is not None and response.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        response.data = {"detail": response.data.get("detail", "Method not allowed.")}
    return response


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """`Authorization: Bearer <api key>` in the schema, so Swagger UI offers "Authorize"."""

    target_class = "traces.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from `manage.py createapikey` or the admin, sent as `Bearer <key>`.",
        }


# --- documented error answers -----------------------------------------------------------------

DetailOut = inline_serializer("ErrorDetail", {"detail": serializers.CharField()})

ERRORS = {
    400: OpenApiResponse(
        OpenApiTypes.OBJECT,
        description='Bad input: `{"<field>": ["<problem>"]}` for each field, or `{"detail": "<problem>"}` '
        "for malformed JSON.",
    ),
    401: OpenApiResponse(DetailOut, description="No credentials, an unknown key or a revoked key."),
    403: OpenApiResponse(DetailOut, description="The caller's role in the experiment does not allow this."),
    404: OpenApiResponse(DetailOut, description="Not found, or not visible to the caller."),
    409: OpenApiResponse(DetailOut, description="Conflicts with the stored state."),
    412: OpenApiResponse(
        DetailOut, description="If-Match names an older version (the ETag header has the current one)."
    ),
    413: OpenApiResponse(DetailOut, description="The request body is over FEEDBACKHUB_MAX_BODY_BYTES."),
    429: OpenApiResponse(DetailOut, description="Rate limited; retry after the Retry-After header's seconds."),
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """Error responses for `extend_schema(responses=...)`; 401 and 429 are always possible."""
    return {code: ERRORS[code] for code in sorted({401, 429, *codes})}
