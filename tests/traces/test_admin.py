"""Admin for experiments, memberships, API keys, traces and spans."""

import re

import pytest
from rest_framework.test import APIClient

from traces.models import ApiKey, Experiment, Membership

from ..factories import make_api_key, make_spans, make_trace

pytestmark = pytest.mark.django_db


def shown_key(response) -> str:
    messages = [str(m) for m in response.context["messages"]]
    [key] = [m for m in re.findall(r"<code>([^<]+)</code>", " ".join(messages))]
    return key


def test_adding_an_api_key_shows_it_once_and_stores_only_its_hash(admin_client, admin_user, experiment):
    response = admin_client.post(
        "/admin/traces/apikey/add/", {"label": "ci", "experiments": [experiment.pk]}, follow=True
    )
    assert response.status_code == 200
    raw = shown_key(response)
    key = ApiKey.objects.get()
    assert raw.startswith("fh_") and key.key_hash == ApiKey.hash(raw) and key.prefix == raw[:10]
    assert key.created_by == admin_user and list(key.experiments.all()) == [experiment]
    assert raw not in admin_client.get(f"/admin/traces/apikey/{key.pk}/change/").content.decode()
    assert raw not in admin_client.get("/admin/traces/apikey/").content.decode()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/traces").status_code == 200


def test_an_api_key_needs_an_experiment(admin_client):
    response = admin_client.post("/admin/traces/apikey/add/", {"label": "none"})
    assert response.status_code == 200 and not ApiKey.objects.exists()


def test_the_revoke_action_makes_the_key_answer_401(admin_client, experiment):
    key, raw = make_api_key(experiment)
    response = admin_client.post(
        "/admin/traces/apikey/", {"action": "revoke", "_selected_action": [key.pk]}, follow=True
    )
    assert "Revoked 1 API key" in response.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is not None
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/traces").status_code == 401


def test_the_rotate_action_shows_the_new_key_once(admin_client, experiment):
    key, raw = make_api_key(experiment)
    response = admin_client.post(
        "/admin/traces/apikey/", {"action": "rotate", "_selected_action": [key.pk]}, follow=True
    )
    new_raw = shown_key(response)
    new_key = ApiKey.objects.get(key_hash=ApiKey.hash(new_raw))
    assert list(new_key.experiments.all()) == [experiment]
    key.refresh_from_db()
    assert key.revoked_at is not None and key.is_active  # still inside the grace period
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {new_raw}")
    assert client.get("/api/v1/traces").status_code == 200


def test_api_keys_cannot_be_deleted(admin_client, experiment):
    key, _ = make_api_key(experiment)
    assert admin_client.post(f"/admin/traces/apikey/{key.pk}/delete/", {"post": "yes"}).status_code == 403
    assert ApiKey.objects.filter(pk=key.pk).exists()


def test_changing_a_key_changes_only_its_label(admin_client, experiment, other_experiment):
    key, _ = make_api_key(experiment)
    hash_before = key.key_hash
    admin_client.post(
        f"/admin/traces/apikey/{key.pk}/change/", {"label": "renamed", "experiments": [other_experiment.pk]}
    )
    key.refresh_from_db()
    assert key.label == "renamed" and key.key_hash == hash_before and list(key.experiments.all()) == [experiment]


def test_adding_an_experiment_with_a_member(admin_client, reviewer):
    response = admin_client.post(
        "/admin/traces/experiment/add/",
        {
            "name": "support-bot",
            "description": "",
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "0",
            "memberships-0-user": reviewer.pk,
            "memberships-0-role": "viewer",
        },
    )
    assert response.status_code == 302
    experiment = Experiment.objects.get(name="support-bot")
    assert Membership.objects.get(experiment=experiment).role == "viewer"


def test_trace_admin_is_read_only_and_limits_the_spans_shown(admin_client, experiment):
    trace = make_trace(experiment, spans=make_spans(60))
    page = admin_client.get(f"/admin/traces/trace/{trace.pk}/change/")
    assert page.status_code == 200
    assert len(re.findall(r"/admin/traces/span/\d+/change/", page.content.decode())) == 50
    assert b'name="_save"' not in page.content
    assert admin_client.get("/admin/traces/trace/add/").status_code == 403
    span = trace.spans.first()
    assert admin_client.get(f"/admin/traces/span/{span.pk}/change/").status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "/admin/",
        "/admin/traces/experiment/?q=rag",
        "/admin/traces/membership/?role__exact=reviewer",
        "/admin/traces/apikey/?q=test",
        "/admin/traces/trace/?state__exact=OK&q=root",
        "/admin/traces/span/?span_type__exact=LLM",
        "/admin/assessments/revision/?channel__exact=api",
    ],
)
def test_every_changelist_renders(admin_client, trace, reviewer, api_key, url):
    assert admin_client.get(url).status_code == 200


def test_trace_changelist_query_count_does_not_grow(admin_client, experiment, django_assert_max_num_queries):
    for _ in range(20):
        make_trace(experiment, spans=2)
    admin_client.get("/admin/traces/trace/")
    # session, user, page count, the page (with experiments joined), the experiment filter choices
    with django_assert_max_num_queries(8):
        assert admin_client.get("/admin/traces/trace/").status_code == 200


def test_admin_changes_settings_through_the_settings_service(admin_client, experiment):
    form = {
        "name": experiment.name,
        "description": "",
        "verdict_name": "answer_ok",
        "retention_days": "0",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
    }
    refused = admin_client.post(f"/admin/traces/experiment/{experiment.pk}/change/", form)
    assert refused.status_code == 200
    assert "1 to 36500" in refused.content.decode()
    experiment.refresh_from_db()
    assert (experiment.verdict_name, experiment.retention_days) == ("reviewer_verdict", None)
    accepted = admin_client.post(
        f"/admin/traces/experiment/{experiment.pk}/change/",
        {**form, "retention_days": "30", "retention_keep_human": "on"},
    )
    assert accepted.status_code == 302
    experiment.refresh_from_db()
    assert (experiment.verdict_name, experiment.retention_days, experiment.retention_keep_human) == (
        "answer_ok",
        30,
        True,
    )
