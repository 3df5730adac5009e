"""Shared fixtures: the personas (reviewer, other_reviewer, viewer, owner, staff), clients, a trace."""

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from assessments.definitions.cache import forget_definitions
from assessments.queues.rules import forget as forget_queues
from traces.authentication import forget_api_keys
from traces.models import Membership

from .factories import make_api_key, make_experiment, make_trace


@pytest.fixture(autouse=True)
def _fast_and_clean(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    cache.clear()
    # Keys resolved in this process outlive a test's rolled-back transaction.
    forget_api_keys()
    forget_definitions()  # experiment ids come back after a rolled-back test
    forget_queues()
    yield
    cache.clear()
    forget_api_keys()
    forget_definitions()
    forget_queues()


@pytest.fixture
def experiment(db):
    return make_experiment("rag-demo")


@pytest.fixture
def other_experiment(db):
    return make_experiment("other-app")


@pytest.fixture
def trace(experiment):
    return make_trace(experiment, spans=3, tags={"env": "test"})


def _member(django_user_model, username, experiment, role):
    user = django_user_model.objects.create_user(username=username, password="pw-" + username)
    if role:
        Membership.objects.create(user=user, experiment=experiment, role=role)
    return user


@pytest.fixture
def reviewer(django_user_model, experiment):
    return _member(django_user_model, "alice", experiment, Membership.Role.REVIEWER)


@pytest.fixture
def other_reviewer(django_user_model, experiment):
    return _member(django_user_model, "bob", experiment, Membership.Role.REVIEWER)


@pytest.fixture
def viewer(django_user_model, experiment):
    return _member(django_user_model, "victor", experiment, Membership.Role.VIEWER)


@pytest.fixture
def owner(django_user_model, experiment):
    return _member(django_user_model, "olivia", experiment, Membership.Role.OWNER)


@pytest.fixture
def outsider(django_user_model, experiment):
    return _member(django_user_model, "mallory", experiment, None)


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user(
        username="charlie", password="pw-charlie", is_staff=True, is_superuser=True
    )


@pytest.fixture
def reviewer_client(client, reviewer):
    client.force_login(reviewer)
    return client


@pytest.fixture
def api_key(experiment):
    """(ApiKey, raw secret) scoped to `experiment`."""
    return make_api_key(experiment)


@pytest.fixture
def api_client(api_key):
    """An APIClient that sends the experiment's key as a Bearer token, as apps do."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")
    return client


def pytest_collection_modifyitems(config, items):
    """Property and fuzz tests (hypothesis, schemathesis) carry the `fuzz` marker, so
    `make test-fast` can leave them out (`-m "not fuzz"`)."""
    for item in items:
        if "fuzz" in item.module.__name__ or getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
            item.add_marker(pytest.mark.fuzz)
