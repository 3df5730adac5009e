"""`Authorization: Bearer <api key>` for apps (native API, MLflow protocol, OTLP)."""

from __future__ import annotations

import base64
import binascii
import time
from datetime import timedelta

from django.conf import settings
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


def api_key_credential(request) -> str | None:
    """The one credential resolver: the API key a request carries, as `Authorization: Bearer
    <key>` (MLFLOW_TRACKING_TOKEN) or HTTP basic auth whose password is the key
    (MLFLOW_TRACKING_USERNAME/PASSWORD); None when it carries neither (or a garbled one)."""
    scheme, _, credentials = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    credentials = credentials.strip()
    if not credentials:
        return None
    scheme = scheme.lower()
    if scheme == "bearer":
        return credentials
    if scheme == "basic":
        try:
            return base64.b64decode(credentials, validate=True).decode().partition(":")[2] or None
        except (binascii.Error, UnicodeDecodeError):
            return None
    return None


# Resolved keys stay in this process for FEEDBACKHUB_API_KEY_CACHE_SECONDS (default 5), so a
# busy app's requests cost no authentication query. An entry keeps revoked_at, which is checked
# on every use (a rotated key's grace period ends on time). Revoking or rotating a key forgets
# it in this process at once (traces.services); other workers see it within the TTL. A scope
# that grew (a new experiment) is re-read on the first miss (Actor.role).
_resolved: dict[str, tuple[float, ApiKey, frozenset[int]]] = {}
_KEY_FIELDS = [field.attname for field in ApiKey._meta.concrete_fields]


def forget_api_keys(*key_hashes: str) -> None:
    """Drop cached keys (all of them when no hash is given)."""
    if not key_hashes:
        _resolved.clear()
    for key_hash in key_hashes:
        _resolved.pop(key_hash, None)


def _load_key(key_hash: str) -> tuple[ApiKey, frozenset[int]] | None:
    """The key and its experiment ids in one query (a LEFT JOIN of the scope table)."""
    rows = list(ApiKey.objects.filter(key_hash=key_hash).values_list(*_KEY_FIELDS, "experiments__id"))
    if not rows:
        return None
    api_key = ApiKey.from_db("default", _KEY_FIELDS, rows[0][:-1])
    return api_key, frozenset(row[-1] for row in rows if row[-1] is not None)


def _reloader(key_hash: str, api_key_pk: int):
    def reload() -> list[int]:
        forget_api_keys(key_hash)
        return list(
            ApiKey.experiments.through.objects.filter(apikey_id=api_key_pk).values_list("experiment_id", flat=True)
        )

    return reload


def actor_for_key(raw_key: str) -> Actor:
    """Resolve a raw key to an Actor; raises AuthenticationFailed for unknown or revoked keys.

    One query for the key and its experiments, none while the key is cached (see above).
    """
    key_hash = ApiKey.hash(raw_key)
    entry = _resolved.get(key_hash)
    if entry is not None and entry[0] > time.monotonic():
        _, api_key, experiment_ids = entry
    else:
        loaded = _load_key(key_hash)
        if loaded is None:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        api_key, experiment_ids = loaded
        ttl = getattr(settings, "FEEDBACKHUB_API_KEY_CACHE_SECONDS", 5)
        if ttl > 0:
            if len(_resolved) > 10_000:
                _resolved.clear()
            _resolved[key_hash] = (time.monotonic() + ttl, api_key, experiment_ids)
    now = timezone.now()
    # A future revoked_at is a rotated key's grace period (traces.services.rotate_api_key).
    if api_key.revoked_at is not None and api_key.revoked_at <= now:
        raise exceptions.AuthenticationFailed("This API key was revoked.")
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return Actor.for_key(api_key, experiment_ids, reload_scope=_reloader(key_hash, api_key.pk))


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """request.user is an ApiKeyUser and request.auth the key's Actor."""

    keyword = "Bearer"

    def authenticate(self, request):
        token = api_key_credential(request)
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
