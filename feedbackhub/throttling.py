"""Rate limits for the API: per API key, per signed-in user, and for the public feedback endpoint.

Fixed windows counted in the Django cache (`count_request`: one pipelined round trip per
request on Redis, add + incr on the local caches; cheap enough for the ingest path). Rates come
from settings.FEEDBACKHUB_RATE_LIMITS, read on every request, as "<count>/<second|minute|hour|day>";
an empty rate turns the limit off. Over the limit DRF answers 429 with `Retry-After` (seconds to
the next window).
"""

from __future__ import annotations

import hashlib
import math
import time

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured
from rest_framework.throttling import BaseThrottle

from .security import client_ip

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def count_request(key: str, *, timeout: int) -> int:
    """Add one to the counter `key` (a window's own key, gone `timeout` seconds after its last
    use) and return the new count. On Redis one round trip: INCR and EXPIRE pipelined (Django's
    add + incr cost three: SET NX, EXISTS, INCRBY). Elsewhere add() then incr(): atomic on
    memcached, per-process exact on the local-memory and file caches."""
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        key = cache.make_and_validate_key(key)
        # Django's Redis backend stores integers as plain Redis integers, so cache.get() reads this.
        pipeline = cache._cache.get_client(key, write=True).pipeline(transaction=False)
        pipeline.incr(key)
        pipeline.expire(key, timeout)
        used, _ = pipeline.execute()
        return used
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=timeout)
        return 1


def parse_rate(rate: str | None) -> tuple[int, int] | None:
    """ "100/minute" → (100, 60); None or "" → None."""
    if not rate:
        return None
    count, _, period = rate.partition("/")
    try:
        return int(count), PERIODS[period.strip()[:1].lower()]
    except (KeyError, ValueError):
        raise ImproperlyConfigured(f"Bad rate {rate!r}: use '<count>/<second|minute|hour|day>'.") from None


class FixedWindowThrottle(BaseThrottle):
    """Allows `count` requests per `period` seconds for each identity `ident()` returns."""

    scope: str = ""

    def ident_for(self, request, view) -> str | None:
        """Who is counted; None leaves the request to other throttles."""
        raise NotImplementedError

    def allow_request(self, request, view) -> bool:
        rate = parse_rate(settings.FEEDBACKHUB_RATE_LIMITS.get(self.scope))
        if rate is None:
            return True
        ident = self.ident_for(request, view)
        if ident is None:
            return True
        count, period = rate
        now = time.time()
        window = int(now // period)
        used = count_request(f"throttle:{self.scope}:{ident}:{window}", timeout=period + 1)
        self.retry_after = (window + 1) * period - now
        return used <= count

    def wait(self) -> float:
        return max(1, math.ceil(getattr(self, "retry_after", 1)))


def _api_key(request):
    """The key behind the request (traces.authentication.ApiKeyUser carries it), or None."""
    return getattr(request.user, "api_key", None)


class ApiKeyRateThrottle(FixedWindowThrottle):
    """Per API key (FEEDBACKHUB_RATE_API_KEY), whatever address the app calls from."""

    scope = "api_key"

    def ident_for(self, request, view):
        api_key = _api_key(request)
        return None if api_key is None else str(api_key.pk)


class UserRateThrottle(FixedWindowThrottle):
    """Per signed-in user on the API (FEEDBACKHUB_RATE_USER)."""

    scope = "user"

    def ident_for(self, request, view):
        user = request.user
        if _api_key(request) is not None or not getattr(user, "is_authenticated", False):
            return None
        return str(user.pk)


class PublicIpThrottle(FixedWindowThrottle):
    """Per client address on the public feedback endpoint (FEEDBACKHUB_RATE_PUBLIC_IP)."""

    scope = "public_ip"

    def ident_for(self, request, view):
        return hashlib.sha256(client_ip(request).encode()).hexdigest()[:32]


class PublicTokenThrottle(FixedWindowThrottle):
    """Per feedback token on the public endpoint (FEEDBACKHUB_RATE_PUBLIC_TOKEN); the raw token is
    hashed, not verified, here: a forged token gets its own counter and a 4xx afterwards."""

    scope = "public_token"

    def ident_for(self, request, view):
        data = request.data
        token = data.get("token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            return None
        return hashlib.sha256(token.encode()).hexdigest()[:32]
