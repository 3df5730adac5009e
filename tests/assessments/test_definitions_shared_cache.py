"""The definitions cache with several app servers sharing Redis (FEEDBACKHUB_REDIS_URL): a change
made on one host is enforced on every host at once. Needs a Redis server
(FEEDBACKHUB_TEST_REDIS_URL, default redis://127.0.0.1:6379/13); skipped without one."""

import os
import uuid

import pytest

from assessments.definitions import cache, services
from traces.access import Actor

SYSTEM = Actor.for_system("test")

REDIS_URL = os.environ.get("FEEDBACKHUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


def redis_reachable() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except Exception:  # any failure to reach it means: skip
        return False


if os.environ.get("FEEDBACKHUB_REQUIRE_REDIS") == "1":  # CI: fail instead of skipping
    pytestmark = []
else:
    pytestmark = pytest.mark.skipif(not redis_reachable(), reason=f"no Redis at {REDIS_URL}")


@pytest.fixture
def shared_redis(settings):
    prefix = f"fh-test-{uuid.uuid4().hex[:12]}"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": prefix,
        }
    }
    settings.FEEDBACKHUB_REDIS_URL = REDIS_URL
    settings.FEEDBACKHUB_DEFINITIONS_RECHECK_MS = 60_000  # without Redis a host would trust its entry a minute
    yield
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)


@pytest.mark.django_db
def test_a_change_made_on_another_host_is_enforced_at_once(
    shared_redis, experiment, django_capture_on_commit_callbacks
):
    assert cache.rules_for(experiment.pk).rules == {}
    this_host = cache._entries[experiment.pk]
    with django_capture_on_commit_callbacks(execute=True):
        services.create_definition(experiment=experiment, actor=SYSTEM, name="tone", type="text")
    cache._entries[experiment.pk] = this_host  # the change was made elsewhere: this host was not told
    assert set(cache.rules_for(experiment.pk).rules) == {"tone"}


@pytest.mark.django_db
def test_a_fresh_entry_costs_no_database_read(shared_redis, experiment, django_assert_num_queries):
    services.create_definition(experiment=experiment, actor=SYSTEM, name="tone", type="text")
    cache.rules_for(experiment.pk)
    with django_assert_num_queries(0):
        assert set(cache.rules_for(experiment.pk).rules) == {"tone"}
