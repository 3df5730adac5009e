"""`Authorization: Bearer <api key>` for apps (native API, MLflow protocol, OTLP)."""
from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions

from .access import Actor
from .models import ApiKey

# last_used_at is refreshed at most this often, so that a busy key does not turn every
# read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyUser:
    """Stands in for request.user when an app authenticates with a key."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, api_key: ApiKey):
        self.api_key = api_key

    def get_username(self) -> str:
        return f"key:{self.api_key.label or self.api_key.prefix}"

    def __str__(self):
        return self.get_username()


def bearer_token(request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def actor_for_key(raw_key: str) -> Actor:
    """Resolve a raw key to an Actor; raises AuthenticationFailed for unknown or revoked keys."""
    api_key = ApiKey.objects.filter(key_hash=ApiKey.hash(raw_key)).first()
    if api_key is None:
        raise exceptions.AuthenticationFailed("Invalid API key.")
    now = timezone.now()
    # A future revoked_at is a rotated key's grace period (traces.services.rotate_api_key).
    if api_key.revoked_at is not None and api_key.revoked_at <= now:
        raise exceptions.AuthenticationFailed("This API key was revoked.")
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return Actor.for_key(api_key)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """request.user is an ApiKeyUser and request.auth the key's Actor."""

    keyword = "Bearer"

    def authenticate(self, request):
        token = bearer_token(request)
        if token is None:
            return None
        actor = actor_for_key(token)
        return ApiKeyUser(actor.api_key), actor

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


def request_actor(request) -> Actor:
    """The Actor behind a DRF or Django request (API key or session user)."""
    if isinstance(getattr(request, "auth", None), Actor):
        return request.auth
    return Actor.for_user(request.user)
