"""End-user feedback without secrets: signed feedback tokens and the public endpoint.

1. The app's backend (API key, or a reviewer's session) asks for a token scoped to
   one trace: `POST /api/v1/traces/{trace_id}/feedback-tokens`, optionally narrowed
   to feedback names, value types, a numeric range, a number of uses and a lifetime.
2. The browser posts `{token, name, value, rationale?}` to
   `POST /api/v1/public/feedback` — no credentials, no CSRF cookie. Browsers of the
   origins in FEEDBACKHUB_CORS_ORIGINS (and this site itself) may call it; requests
   carrying any other Origin are refused. Rate-limited per token and per address.
3. The feedback is written by `services.log_feedback` on channel `public`, attributed
   to `end-user:<pseudonym>` (source HUMAN), so it shows in the reviewer's page.

The token is `django.core.signing.dumps` (HMAC with SECRET_KEY, honouring
SECRET_KEY_FALLBACKS) of the claims below; nothing is stored until it is used. Its uses
are counted in its own FeedbackToken row (so deleting the feedback does not give a use
back), and a token dies with its issuer's right to mint it: the API key revoked or no
longer covering the experiment, the user deactivated or no longer a reviewer there
(assessments.feedback_tokens).
"""

from __future__ import annotations

import secrets
import time
from datetime import datetime, timezone
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.core.exceptions import DisallowedHost
from django.db import transaction
from django.utils.cache import patch_vary_headers
from django.utils.crypto import salted_hmac
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import APIException, PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from feedbackhub.api import ERRORS, errors
from feedbackhub.throttling import PublicIpThrottle, PublicTokenThrottle
from traces import selectors as trace_selectors
from traces.access import REVIEWER, Actor
from traces.authentication import request_actor
from traces.models import Trace

from . import feedback_tokens, services
from .serializers import AnyJSONField

TOKEN_SALT = "feedbackhub.assessments.public-feedback-token"
PSEUDONYM_SALT = "feedbackhub.assessments.end-user-pseudonym"
VALUE_TYPES = ("boolean", "number", "string")
MAX_NAMES = 20
MIN_LIFETIME_SECONDS = 10
CORS_MAX_AGE_SECONDS = 600


class TokenRefused(APIException):
    """A token that is expired, tampered with or used up (403 / 409); nothing is stored."""

    status_code = status.HTTP_403_FORBIDDEN
    default_code = "token_refused"

    def __init__(self, detail: str, status_code: int = status.HTTP_403_FORBIDDEN):
        super().__init__({"token": [detail]})
        self.status_code = status_code


# --- tokens -----------------------------------------------------------------------------------


def value_type(value) -> str | None:
    """boolean, number or string for the scalar values end users may send; None for anything else."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return None


def pseudonym_for(experiment_id: int, end_user: str | None) -> str:
    """A stable pseudonym for the app's own user id (an HMAC keyed with SECRET_KEY, so the id
    itself is never stored; a new SECRET_KEY gives new pseudonyms), or a fresh random one when
    the app gives none."""
    if not end_user:
        return secrets.token_hex(8)
    return salted_hmac(PSEUDONYM_SALT, f"{experiment_id}:{end_user}", algorithm="sha256").hexdigest()[:16]


def issue_token(
    *,
    trace: Trace,
    actor: Actor,
    names: list[str] | None = None,
    value_types: list[str] | None = None,
    value_range: tuple[float, float] | None = None,
    max_uses: int = 1,
    lifetime_seconds: int | None = None,
    end_user: str | None = None,
) -> dict:
    """Sign a feedback token for one trace. Stores nothing.

    Raises django PermissionDenied unless the actor may add feedback to the trace.
    Returns {token, trace_id, end_user, expires_at, names, value_types, value_range, max_uses}.
    """
    actor.require(trace.experiment_id, REVIEWER)
    lifetime = lifetime_seconds or settings.FEEDBACKHUB_PUBLIC_TOKEN_DEFAULT_SECONDS
    expires = int(time.time()) + lifetime
    pseudonym = pseudonym_for(trace.experiment_id, end_user)
    claims = {
        "t": trace.trace_id,
        "e": trace.experiment_id,
        "u": pseudonym,
        "n": names or None,
        "vt": value_types or None,
        "r": list(value_range) if value_range else None,
        "m": max_uses,
        "x": expires,
        **feedback_tokens.issuer_claims(actor),
        "j": secrets.token_hex(12),
    }
    return {
        "token": signing.dumps(claims, salt=TOKEN_SALT, compress=True),
        "trace_id": trace.trace_id,
        "end_user": pseudonym,
        "expires_at": datetime.fromtimestamp(expires, tz=timezone.utc),
        "names": names or None,
        "value_types": value_types or None,
        "value_range": list(value_range) if value_range else None,
        "max_uses": max_uses,
    }


def read_token(token: str) -> dict:
    """The claims of a valid, unexpired token; TokenRefused (403) otherwise."""
    try:
        claims = signing.loads(
            token,
            salt=TOKEN_SALT,
            max_age=settings.FEEDBACKHUB_PUBLIC_TOKEN_MAX_SECONDS,
        )
    except signing.SignatureExpired:
        raise TokenRefused("This feedback token has expired.") from None
    except signing.BadSignature:
        raise TokenRefused("This feedback token is not valid (it was altered or not issued here).") from None
    if not isinstance(claims, dict) or not {"t", "e", "u", "m", "x", "j"} <= set(claims):
        raise TokenRefused("This feedback token is not valid.")
    if claims["x"] < time.time():
        raise TokenRefused("This feedback token has expired.")
    refusal = feedback_tokens.issuer_refusal(claims)
    if refusal is not None:
        raise TokenRefused(refusal)
    return claims


def check_scope(claims: dict, name: str, value) -> None:
    """Refuse (403, field named) a name, value type or value outside what the token allows."""
    if claims.get("n") and name not in claims["n"]:
        raise PermissionDenied({"name": [f"This token allows feedback named {', '.join(claims['n'])} only."]})
    kind = value_type(value)
    if claims.get("vt") and kind not in claims["vt"]:
        raise PermissionDenied({"value": [f"This token allows {' or '.join(claims['vt'])} values only."]})
    if claims.get("r") and kind == "number":
        low, high = claims["r"]
        if not low <= value <= high:
            raise PermissionDenied({"value": [f"must be between {low} and {high}."]})


def log_public_feedback(*, claims: dict, name: str, value, rationale: str):
    """Write one end-user feedback through services.log_feedback, taking the token's next use.

    Raises TokenRefused (409) when the token's uses are spent and Http404 when its trace is gone.
    """
    actor = Actor.for_end_user(claims["u"], claims["e"])
    # Http404 when the trace is gone (or moved out of the token's experiment).
    trace = trace_selectors.trace_for(actor, claims["t"])
    for _ in range(claims["m"]):
        with transaction.atomic():  # the use is given back when the write is refused
            use = feedback_tokens.take_use(claims)
            if use is None:
                break
            try:
                feedback = services.log_feedback(
                    trace=trace,
                    name=name,
                    value=value,
                    rationale=rationale,
                    actor=actor,
                    channel="public",
                    source_type="HUMAN",
                    source_id=f"end-user:{claims['u']}",
                    idempotency_key=feedback_tokens.public_idempotency_key(claims, use),
                )
            except services.Conflict:
                continue  # the use's key was taken before uses were counted: that use is spent
        if not feedback.replayed:
            feedback.uses_left = claims["m"] - use
            return feedback
    raise TokenRefused(
        f"This feedback token was already used {claims['m']} time(s), its limit.",
        status.HTTP_409_CONFLICT,
    )


# --- CORS -------------------------------------------------------------------------------------


def origin_allowed(request) -> bool:
    """No Origin (not a browser), this site itself, or one of FEEDBACKHUB_CORS_ORIGINS."""
    origin = request.headers.get("Origin")
    if not origin:
        return True
    if origin in settings.FEEDBACKHUB_CORS_ORIGINS:
        return True
    parts = urlsplit(origin)
    try:
        return parts.netloc == request.get_host() and parts.scheme == request.scheme
    except DisallowedHost:  # a Host header this site does not serve: not our own origin
        return False


class OriginAllowed(permissions.BasePermission):
    message = "Feedback from this origin is not accepted (FEEDBACKHUB_CORS_ORIGINS)."

    def has_permission(self, request, view):
        return origin_allowed(request)


# --- API --------------------------------------------------------------------------------------


class ValueRangeInput(serializers.Serializer):
    min = serializers.FloatField()
    max = serializers.FloatField()

    def validate(self, data):
        if data["min"] > data["max"]:
            raise serializers.ValidationError("min is larger than max")
        return data


class FeedbackTokenInput(serializers.Serializer):
    names = serializers.ListField(
        child=serializers.CharField(max_length=250),
        required=False,
        max_length=MAX_NAMES,
        allow_empty=False,
        help_text="Feedback names the token may post; any name when absent.",
    )
    value_types = serializers.ListField(
        child=serializers.ChoiceField(choices=VALUE_TYPES),
        required=False,
        allow_empty=False,
        help_text="Allowed value types; boolean, number or string when absent.",
    )
    value_range = ValueRangeInput(required=False, help_text="Inclusive bounds for numeric values (ratings).")
    max_uses = serializers.IntegerField(min_value=1, required=False, default=1)
    expires_in = serializers.IntegerField(
        min_value=MIN_LIFETIME_SECONDS,
        required=False,
        help_text="Lifetime in seconds (default one day).",
    )
    end_user = serializers.CharField(
        max_length=250,
        required=False,
        allow_blank=True,
        help_text="The app's id for the end user; stored only as a pseudonym.",
    )

    def validate_max_uses(self, value):
        if value > settings.FEEDBACKHUB_PUBLIC_MAX_USES:
            raise serializers.ValidationError(f"must be at most {settings.FEEDBACKHUB_PUBLIC_MAX_USES}")
        return value

    def validate_expires_in(self, value):
        if value > settings.FEEDBACKHUB_PUBLIC_TOKEN_MAX_SECONDS:
            raise serializers.ValidationError(
                f"must be at most {settings.FEEDBACKHUB_PUBLIC_TOKEN_MAX_SECONDS} seconds"
            )
        return value


class FeedbackTokenOut(serializers.Serializer):
    token = serializers.CharField()
    trace_id = serializers.CharField()
    end_user = serializers.CharField(help_text="The pseudonym the feedback will be attributed to.")
    expires_at = serializers.DateTimeField()
    names = serializers.ListField(child=serializers.CharField(), allow_null=True)
    value_types = serializers.ListField(child=serializers.CharField(), allow_null=True)
    value_range = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    max_uses = serializers.IntegerField()
    endpoint = serializers.CharField(help_text="Where the browser posts the feedback.")


class FeedbackTokenCreateApi(APIView):
    @extend_schema(
        operation_id="feedback_tokens_create",
        tags=["end-user feedback"],
        request=FeedbackTokenInput,
        parameters=[
            OpenApiParameter(
                "trace_id",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                description="'tr-' + 32 lowercase hex digits",
            )
        ],
        responses={201: FeedbackTokenOut, **errors(400, 403, 404, 413)},
    )
    def post(self, request, trace_id):
        actor = request_actor(request)
        trace = trace_selectors.trace_for(actor, trace_id)
        data = FeedbackTokenInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        value_range = fields.get("value_range")
        issued = issue_token(
            trace=trace,
            actor=actor,
            names=fields.get("names"),
            value_types=fields.get("value_types"),
            value_range=(value_range["min"], value_range["max"]) if value_range else None,
            max_uses=fields["max_uses"],
            lifetime_seconds=fields.get("expires_in"),
            end_user=fields.get("end_user"),
        )
        issued["endpoint"] = request.build_absolute_uri("/api/v1/public/feedback")
        return Response(FeedbackTokenOut(issued).data, status=status.HTTP_201_CREATED)


class PublicFeedbackInput(serializers.Serializer):
    token = serializers.CharField(max_length=2000)
    name = serializers.CharField(max_length=250)
    value = AnyJSONField(help_text="true/false, a number or a short string.")
    rationale = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)

    def validate_value(self, value):
        kind = value_type(value)
        if kind is None:
            raise serializers.ValidationError("must be true/false, a number or a string")
        if kind == "string" and len(value) > settings.FEEDBACKHUB_PUBLIC_MAX_TEXT:
            raise serializers.ValidationError(f"is longer than {settings.FEEDBACKHUB_PUBLIC_MAX_TEXT} characters")
        return value

    def validate_rationale(self, value):
        if len(value) > settings.FEEDBACKHUB_PUBLIC_MAX_TEXT:
            raise serializers.ValidationError(f"is longer than {settings.FEEDBACKHUB_PUBLIC_MAX_TEXT} characters")
        return value


class PublicFeedbackOut(serializers.Serializer):
    assessment_id = serializers.CharField()
    trace_id = serializers.CharField()
    name = serializers.CharField()
    value = AnyJSONField()
    rationale = serializers.CharField()
    end_user = serializers.CharField(source="source_id")
    create_time = serializers.DateTimeField()
    uses_left = serializers.IntegerField()


class PublicFeedbackApi(APIView):
    """`POST /api/v1/public/feedback`: an end user's feedback, authorised by a feedback token only."""

    authentication_classes: list = []
    permission_classes = [OriginAllowed]
    throttle_classes = [PublicIpThrottle, PublicTokenThrottle]

    @extend_schema(
        operation_id="public_feedback_create",
        tags=["end-user feedback"],
        auth=[],
        request=PublicFeedbackInput,
        responses={
            201: PublicFeedbackOut,
            400: ERRORS[400],
            403: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description='`{"token": [...]}` expired, altered or its key revoked; `{"name"|"value": [...]}` '
                'outside what the token allows; `{"detail": ...}` an origin not in FEEDBACKHUB_CORS_ORIGINS.',
            ),
            404: ERRORS[404],
            409: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description='`{"token": [...]}`: the token\'s uses are spent.',
            ),
            413: ERRORS[413],
            429: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="Rate limit per token and per address (Retry-After).",
            ),
        },
    )
    def post(self, request):
        data = PublicFeedbackInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        claims = read_token(fields["token"])
        check_scope(claims, fields["name"], fields["value"])
        feedback = log_public_feedback(
            claims=claims,
            name=fields["name"],
            value=fields["value"],
            rationale=fields["rationale"],
        )
        return Response(PublicFeedbackOut(feedback).data, status=status.HTTP_201_CREATED)

    @extend_schema(exclude=True)
    def options(self, request, *args, **kwargs):
        """CORS preflight: allowed origins get the headers (finalize_response), others a 403."""
        if not origin_allowed(request):
            return Response({"detail": OriginAllowed.message}, status=status.HTTP_403_FORBIDDEN)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        origin = request.headers.get("Origin")
        if origin and origin_allowed(request):
            response["Access-Control-Allow-Origin"] = origin
            response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
            response["Access-Control-Allow-Headers"] = "Content-Type"
            response["Access-Control-Max-Age"] = str(CORS_MAX_AGE_SECONDS)
            response["Access-Control-Expose-Headers"] = "Retry-After"
        patch_vary_headers(response, ["Origin"])
        return response
