"""Refusing abuse cleanly: per-key rate limits, login brute force, key rotation without downtime."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone
from rest_framework.test import APIClient

from traces import services as trace_services
from traces.access import Actor
from traces.models import ApiKey

from ..clock import fresh_minute
from ..factories import make_api_key

pytestmark = pytest.mark.django_db


def key_client(raw_key: str, **defaults) -> APIClient:
    client = APIClient(**defaults)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


# --- per-key rate limit ------------------------------------------------------------------------


@pytest.fixture
def tight_limits(settings):
    settings.FEEDBACKHUB_RATE_LIMITS = {**settings.FEEDBACKHUB_RATE_LIMITS, "api_key": "3/minute", "user": "2/minute"}
    fresh_minute()


def test_api_key_over_its_rate_gets_429_with_retry_after(api_client, tight_limits):
    assert [api_client.get("/api/v1/experiments").status_code for _ in range(3)] == [200, 200, 200]
    limited = api_client.get("/api/v1/experiments")
    assert limited.status_code == 429
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert "throttled" in limited.json()["detail"].lower()


def test_rate_limit_is_per_key_not_per_address(experiment, tight_limits):
    first, second = make_api_key(experiment)[1], make_api_key(experiment)[1]
    same_address = {"REMOTE_ADDR": "198.51.100.1"}
    for _ in range(3):
        key_client(first, **same_address).get("/api/v1/experiments")
    assert key_client(first, **same_address).get("/api/v1/experiments").status_code == 429
    assert key_client(second, **same_address).get("/api/v1/experiments").status_code == 200


def test_writes_count_against_the_key_too(api_client, trace, tight_limits):
    statuses = [
        api_client.post(
            f"/api/v1/traces/{trace.trace_id}/feedback", {"name": "n", "value": i}, format="json"
        ).status_code
        for i in range(4)
    ]
    assert statuses == [201, 201, 201, 429]


def test_signed_in_users_have_their_own_limit(client, reviewer, tight_limits):
    client.force_login(reviewer)
    assert [client.get("/api/v1/experiments").status_code for _ in range(3)] == [200, 200, 429]


def test_empty_rate_turns_the_limit_off(api_client, settings):
    settings.FEEDBACKHUB_RATE_LIMITS = {**settings.FEEDBACKHUB_RATE_LIMITS, "api_key": ""}
    assert all(api_client.get("/api/v1/experiments").status_code == 200 for _ in range(20))


# --- login brute force -------------------------------------------------------------------------


@pytest.fixture
def lockout(settings):
    settings.FEEDBACKHUB_LOGIN_MAX_FAILURES = 3
    settings.FEEDBACKHUB_LOGIN_MAX_FAILURES_PER_IP = 10
    settings.FEEDBACKHUB_LOGIN_LOCKOUT_SECONDS = 900


def login(client, username, password):
    return client.post("/accounts/login/", {"username": username, "password": password})


def test_login_locks_after_repeated_failures_even_with_the_right_password(client, reviewer, lockout):
    for _ in range(3):
        assert login(client, "alice", "wrong").status_code == 200  # the form again, with its error
    locked = login(client, "alice", "pw-alice")
    assert locked.status_code == 429
    assert 0 < int(locked["Retry-After"]) <= 900
    assert b"Too many failed sign-in attempts" in locked.content
    assert "_auth_user_id" not in client.session


def test_lockout_is_per_username_and_address(client, reviewer, other_reviewer, lockout):
    for _ in range(3):
        login(client, "alice", "wrong")
    assert login(client, "bob", "pw-bob").status_code == 302  # another user from the same address
    other_address = type(client)(REMOTE_ADDR="192.0.2.99")
    assert login(other_address, "alice", "pw-alice").status_code == 302  # the user from elsewhere


def test_lockout_ends_after_the_lockout_period(client, reviewer, lockout, settings, monkeypatch):
    for _ in range(3):
        login(client, "alice", "wrong")
    import feedbackhub.security as security

    later = security.time.time() + 901
    monkeypatch.setattr(security.time, "time", lambda: later)
    assert login(client, "alice", "pw-alice").status_code == 302


def test_success_resets_the_failure_count(client, reviewer, lockout):
    login(client, "alice", "wrong")
    login(client, "alice", "wrong")
    assert login(client, "alice", "pw-alice").status_code == 302
    client.logout()
    login(client, "alice", "wrong")
    login(client, "alice", "wrong")
    assert login(client, "alice", "pw-alice").status_code == 302


def test_submitting_without_a_password_does_not_reset_the_count(client, reviewer, lockout):
    login(client, "alice", "wrong")
    login(client, "alice", "wrong")
    login(client, "alice", "")
    login(client, "alice", "wrong")
    assert login(client, "alice", "pw-alice").status_code == 429


def test_one_address_is_refused_after_many_failures_over_many_usernames(client, reviewer, lockout):
    for n in range(10):
        login(client, f"user{n}", "wrong")
    assert login(client, "alice", "pw-alice").status_code == 429


def test_usernames_are_counted_case_insensitively(client, reviewer, lockout):
    for name in ("alice", "ALICE", "Alice"):
        login(client, name, "wrong")
    assert login(client, "alice", "pw-alice").status_code == 429


# --- API key rotation --------------------------------------------------------------------------


@pytest.fixture
def owner_actor(owner):
    return Actor.for_user(owner)


def test_rotation_keeps_both_keys_working_during_the_grace_period(api_key, owner_actor, experiment):
    old_key, old_raw = api_key
    new_key, new_raw = trace_services.rotate_api_key(api_key=old_key, actor=owner_actor, grace_seconds=3600)

    assert set(new_key.experiments.all()) == {experiment} and new_key.label == old_key.label
    assert key_client(old_raw).get("/api/v1/experiments").status_code == 200
    assert key_client(new_raw).get("/api/v1/experiments").status_code == 200
    old_key.refresh_from_db()
    assert old_key.is_active and old_key.revoked_at > timezone.now() + timedelta(minutes=59)


def test_old_key_stops_after_the_grace_period(api_key, owner_actor):
    old_key, old_raw = api_key
    _, new_raw = trace_services.rotate_api_key(api_key=old_key, actor=owner_actor, grace_seconds=3600)
    ApiKey.objects.filter(pk=old_key.pk).update(revoked_at=timezone.now() - timedelta(seconds=1))  # time passes
    assert key_client(old_raw).get("/api/v1/experiments").status_code == 401
    assert key_client(new_raw).get("/api/v1/experiments").status_code == 200


def test_revoking_a_rotated_key_ends_its_grace_period_at_once(api_key, owner_actor):
    old_key, old_raw = api_key
    trace_services.rotate_api_key(api_key=old_key, actor=owner_actor, grace_seconds=3600)
    trace_services.revoke_api_key(api_key=old_key, actor=owner_actor)
    assert not old_key.is_active
    assert key_client(old_raw).get("/api/v1/experiments").status_code == 401


def test_rotation_with_zero_grace_is_an_immediate_switch(api_key, owner_actor):
    old_key, old_raw = api_key
    _, new_raw = trace_services.rotate_api_key(api_key=old_key, actor=owner_actor, grace_seconds=0)
    assert key_client(old_raw).get("/api/v1/experiments").status_code == 401
    assert key_client(new_raw).get("/api/v1/experiments").status_code == 200


def test_rotation_needs_owner_rights_and_a_live_key(api_key, reviewer, owner_actor):
    with pytest.raises(PermissionDenied):
        trace_services.rotate_api_key(api_key=api_key[0], actor=Actor.for_user(reviewer))
    trace_services.revoke_api_key(api_key=api_key[0], actor=owner_actor)
    with pytest.raises(trace_services.Conflict):
        trace_services.rotate_api_key(api_key=api_key[0], actor=owner_actor)
    assert ApiKey.objects.count() == 1


def test_rotateapikey_command_prints_the_new_key_and_keeps_the_old_one_for_the_grace_period(api_key, capsys):
    from django.core.management import call_command

    old_key, old_raw = api_key
    call_command("rotateapikey", old_key.prefix, "--grace-seconds", "600")
    out, err = capsys.readouterr()
    new_raw = out.strip()
    assert new_raw.startswith("fh_") and new_raw != old_raw and "works until" in err
    assert key_client(new_raw).get("/api/v1/experiments").status_code == 200
    assert key_client(old_raw).get("/api/v1/experiments").status_code == 200
    old_key.refresh_from_db()
    assert timedelta(seconds=590) < old_key.revoked_at - timezone.now() <= timedelta(seconds=600)


def test_rotateapikey_command_needs_a_unique_live_prefix(api_key):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="No unrevoked keys"):
        call_command("rotateapikey", "fh_nothing_like_this")
