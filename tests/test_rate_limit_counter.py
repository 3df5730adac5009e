"""The rate-limit counter (feedbackhub.throttling.count_request): one shared count per window on
Redis in one round trip, add + incr on the local caches. The Redis half needs a Redis server
(FEEDBACKHUB_TEST_REDIS_URL, default redis://127.0.0.1:6379/13); CI requires it."""

import os
import uuid

import pytest
from django.core.cache import caches

from feedbackhub.throttling import count_request

REDIS_URL = os.environ.get("FEEDBACKHUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


def redis_reachable() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except Exception:  # any failure to reach it means: skip
        return False


needs_redis = pytest.mark.skipif(
    os.environ.get("FEEDBACKHUB_REQUIRE_REDIS") != "1" and not redis_reachable(), reason=f"no Redis at {REDIS_URL}"
)


def test_the_local_cache_counts_each_window_from_one(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "count"}}
    assert [count_request("w1", timeout=5) for _ in range(3)] == [1, 2, 3]
    assert count_request("w2", timeout=5) == 1


@needs_redis
def test_redis_counts_in_one_round_trip_with_an_expiry_and_every_host_shares_the_count(settings, monkeypatch):
    import redis

    prefix = f"fh-test-{uuid.uuid4().hex[:12]}"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": prefix,
        }
    }
    client = redis.Redis.from_url(REDIS_URL)
    round_trips = []
    execute = redis.client.Pipeline.execute
    monkeypatch.setattr(
        redis.client.Pipeline, "execute", lambda self, *a, **k: round_trips.append(1) or execute(self, *a, **k)
    )
    try:
        assert [count_request("throttle:api:k:1", timeout=61) for _ in range(3)] == [1, 2, 3]
        assert len(round_trips) == 3
        # Another host (its own connection pool, same Redis and prefix) continues the same count,
        # and Django's own get() reads it.
        caches["default"].close()
        assert count_request("throttle:api:k:1", timeout=61) == 4
        assert caches["default"].get("throttle:api:k:1") == 4
        [key] = client.keys(f"{prefix}:*")
        assert 0 < client.ttl(key) <= 61
    finally:
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)
