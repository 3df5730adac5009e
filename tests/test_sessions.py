"""feedbackhub.sessions: Django's database sessions with the per-request read written out."""

from datetime import timedelta
from importlib import import_module

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

pytestmark = pytest.mark.django_db


def store(key=None):
    return import_module(settings.SESSION_ENGINE).SessionStore(key)


def test_a_session_reads_back_what_was_saved():
    saved = store()
    saved["answer"] = {"n": 42, "name": "alice"}
    saved.save()
    with CaptureQueriesContext(connection) as read:
        loaded = store(saved.session_key)
        assert loaded["answer"] == {"n": 42, "name": "alice"}
    assert len(read) == 1 and "django_session" in read.captured_queries[0]["sql"]
    assert loaded.session_key == saved.session_key


def test_an_expired_or_unknown_session_is_empty_and_its_key_forgotten():
    saved = store()
    saved["x"] = 1
    saved.save()
    Session.objects.filter(pk=saved.session_key).update(expire_date=timezone.now() - timedelta(seconds=1))
    for key in (saved.session_key, "no-such-session-key-0123456789ab"):
        loaded = store(key)
        assert loaded.load() == {} and loaded.session_key is None


def test_signed_in_requests_use_it(client, reviewer):
    client.force_login(reviewer)
    assert client.session.__class__.__module__ == "feedbackhub.sessions"
    response = client.get("/api/v1/experiments")
    assert response.status_code == 200
    client.logout()
    assert client.get("/api/v1/experiments").status_code in (401, 403)
