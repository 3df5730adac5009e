"""The experiment's settings through `PATCH /api/v1/experiments/{id}`: each changes alone, bad
values are refused naming the field and change nothing, only owners, staff and keys change."""

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def url(experiment):
    return f"/api/v1/experiments/{experiment.pk}"


def test_defaults_are_shown(api_client, experiment):
    body = api_client.get(url(experiment)).json()
    assert body["verdict_name"] == "reviewer_verdict"
    assert body["retention_days"] is None
    assert body["retention_keep_human"] is False


def test_each_setting_changes_alone_and_the_others_stay(api_client, experiment):
    changed = api_client.patch(url(experiment), {"verdict_name": " answer_ok "}, format="json")
    assert changed.status_code == 200, changed.content
    assert changed.json()["verdict_name"] == "answer_ok"
    kept = api_client.patch(url(experiment), {"retention_days": 30, "retention_keep_human": True}, format="json")
    assert kept.status_code == 200, kept.content
    experiment.refresh_from_db()
    assert (experiment.verdict_name, experiment.retention_days, experiment.retention_keep_human) == (
        "answer_ok",
        30,
        True,
    )
    forever = api_client.patch(url(experiment), {"retention_days": None}, format="json")
    assert forever.json()["retention_days"] is None
    experiment.refresh_from_db()
    assert experiment.retention_days is None and experiment.verdict_name == "answer_ok"


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"retention_days": 0}, "retention_days"),
        ({"retention_days": -3}, "retention_days"),
        ({"retention_days": "soon"}, "retention_days"),
        ({"retention_days": 10**9}, "retention_days"),
        ({"verdict_name": ""}, "verdict_name"),
        ({"verdict_name": "x" * 251}, "verdict_name"),
        ({"retention_keep_human": "maybe"}, "retention_keep_human"),
        ({"name": "renamed"}, "name"),
        ({}, "settings"),
        ({"verdict_name": "fine", "retention_days": 0}, "retention_days"),
    ],
)
def test_bad_settings_are_refused_naming_the_field_and_change_nothing(api_client, experiment, payload, field):
    response = api_client.patch(url(experiment), payload, format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()
    experiment.refresh_from_db()
    assert (experiment.verdict_name, experiment.retention_days, experiment.name) == (
        "reviewer_verdict",
        None,
        experiment.name,
    )


def test_reviewers_and_viewers_may_not_change_settings_owners_may(experiment, reviewer, viewer, owner):
    for user in (reviewer, viewer):
        api = APIClient()
        api.force_login(user)
        assert api.patch(url(experiment), {"retention_days": 7}, format="json").status_code == 403
    api = APIClient()
    api.force_login(owner)
    assert api.patch(url(experiment), {"retention_days": 7}, format="json").status_code == 200
    experiment.refresh_from_db()
    assert experiment.retention_days == 7


def test_other_experiments_are_not_found(api_client, other_experiment):
    assert api_client.patch(url(other_experiment), {"retention_days": 7}, format="json").status_code == 404
