"""Feedback definitions: the rules (pure), the services and the native API over HTTP."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from rest_framework.test import APIClient

from assessments.definitions import cache, services
from assessments.definitions.models import Definition, DefinitionVersion
from assessments.definitions.rules import Rule, clean_constraints
from traces.access import Actor
from traces.services import Conflict

SYSTEM = Actor.for_system("test")


def rule(type_, name="helpfulness", version=1, **constraints):
    return Rule(
        name=name, kind="feedback", version=version, type=type_, constraints=clean_constraints(type_, constraints)
    )


def refusal(rule_, value) -> str:
    with pytest.raises(ValidationError) as caught:
        rule_.check(value)
    return caught.value.message_dict["value"][0]


# --- rules ------------------------------------------------------------------------------------


def test_integer_scale_message_names_definition_version_and_rule():
    scale = rule("number", min=1, max=5, integer=True)
    assert refusal(scale, 7) == "helpfulness (v1) expects an integer from 1 to 5; got 7"
    assert refusal(scale, 2.5) == "helpfulness (v1) expects an integer from 1 to 5; got 2.5"
    assert refusal(scale, True) == "helpfulness (v1) expects an integer from 1 to 5; got true"
    assert refusal(scale, "3") == 'helpfulness (v1) expects an integer from 1 to 5; got "3"'
    for value in (1, 3, 5, 4.0):
        scale.check(value)


@pytest.mark.parametrize(
    ("type_", "constraints", "good", "bad", "message"),
    [
        ("boolean", {}, [True, False], 1, "q (v3) expects true or false; got 1"),
        ("number", {"min": 0}, [0, 0.5, 1e9], -1, "q (v3) expects a number of at least 0; got -1"),
        ("number", {"max": 1}, [1, -3], 1.5, "q (v3) expects a number of at most 1; got 1.5"),
        ("number", {}, [7, -2.5], "x", 'q (v3) expects a number; got "x"'),
        (
            "category",
            {"options": ["billing", {"value": "shipping", "label": "Shipping"}]},
            ["billing", "shipping"],
            "Billing",
            'q (v3) expects one of "billing", "shipping"; got "Billing"',
        ),
        (
            "category",
            {"options": ["a", "b", "c"], "multiple": True},
            [["a"], ["c", "a"], []],
            ["a", "a"],
            'q (v3) expects a list of distinct options from "a", "b", "c"; got ["a", "a"]',
        ),
        (
            "text",
            {"max_length": 5},
            ["", "hello"],
            "toolong",
            "q (v3) expects text of at most 5 characters; got 7 characters",
        ),
        ("text", {}, ["anything"], 5, "q (v3) expects text; got 5"),
        (
            "json",
            {"json_schema": {"type": "object", "required": ["score"], "properties": {"score": {"type": "number"}}}},
            [{"score": 1}],
            {"score": "high"},
            "q (v3) expects JSON matching its schema; got {\"score\": \"high\"}: 'high' is not of type 'number' (at /score)",
        ),
    ],
)
def test_each_type_accepts_its_values_and_refuses_others_by_name(type_, constraints, good, bad, message):
    checked = rule(type_, name="q", version=3, **constraints)
    for value in good:
        checked.check(value)
    assert refusal(checked, bad) == message


@pytest.mark.parametrize(
    ("type_", "constraints", "field", "fragment"),
    [
        ("number", {"min": 5, "max": 1}, "min", "greater than max"),
        ("number", {"min": 1.5, "integer": True}, "min", "whole number"),
        ("number", {"min": 1, "max": 5, "levels": {"9": "x"}}, "levels", "outside"),
        ("number", {"levels": {"high": "x"}}, "levels", "not a number"),
        ("number", {"options": ["a"]}, "options", "does not apply to a number definition"),
        ("category", {}, "options", "non-empty list"),
        ("category", {"options": ["a", "a"]}, "options", "listed twice"),
        ("text", {"max_length": 0}, "max_length", "positive integer"),
        ("json", {"json_schema": {"type": "nonsense"}}, "json_schema", "not a valid JSON Schema"),
        ("colour", {}, "type", "must be one of"),
    ],
)
def test_contradictory_or_malformed_constraints_are_refused(type_, constraints, field, fragment):
    with pytest.raises(ValidationError) as caught:
        clean_constraints(type_, constraints)
    assert fragment in caught.value.message_dict[field][0]


def test_small_integer_scale_has_levels_with_descriptions():
    scale = rule("number", min=1, max=3, integer=True, levels={"1": "Useless", "3": "Perfect"})
    assert scale.levels == [(1, "Useless"), (2, ""), (3, "Perfect")]
    assert rule("number", min=0, max=100, integer=True).levels == []
    assert rule("number", min=0, max=1).levels == []


# --- services ---------------------------------------------------------------------------------


def test_create_update_archive_make_versions_and_stamp_changes(experiment):
    stamp = experiment.definitions_stamp
    first = services.create_definition(
        experiment=experiment, actor=SYSTEM, name="helpfulness", type="number", min=1, max=5, integer=True
    )
    assert first.version == 1 and first.constraints == {"min": 1, "max": 5, "integer": True}
    experiment.refresh_from_db()
    assert experiment.definitions_stamp != stamp
    second = services.update_definition(definition=first.definition, actor=SYSTEM, max=10, description="Be fair")
    assert second.version == 2 and second.constraints["max"] == 10 and second.constraints["min"] == 1
    same = services.update_definition(definition=first.definition, actor=SYSTEM, max=10)
    assert same.version == 2 and DefinitionVersion.objects.count() == 2
    services.archive_definition(definition=first.definition, actor=SYSTEM)
    assert cache.rules_for(experiment.pk).rules == {}
    again = services.create_definition(experiment=experiment, actor=SYSTEM, name="helpfulness", type="boolean")
    assert again.version == 3 and not again.definition.is_archived
    assert list(Definition.objects.get().versions.values_list("version", flat=True)) == [1, 2, 3]


def test_taken_name_is_a_conflict_and_reviewers_may_not_define(experiment, reviewer):
    services.create_definition(experiment=experiment, actor=SYSTEM, name="tone", type="text")
    with pytest.raises(Conflict):
        services.create_definition(experiment=experiment, actor=SYSTEM, name="tone", type="boolean")
    with pytest.raises(PermissionDenied):
        services.create_definition(experiment=experiment, actor=Actor.for_user(reviewer), name="x", type="boolean")


def test_cache_notices_a_change_made_elsewhere_by_its_stamp(experiment, settings):
    settings.FEEDBACKHUB_DEFINITIONS_RECHECK_MS = 0
    assert cache.rules_for(experiment.pk).rules == {}
    services.create_definition(experiment=experiment, actor=SYSTEM, name="tone", type="text")
    # Another worker: its entry is stale but it has not been told; the stamp gives it away.
    cache._entries[experiment.pk] = cache.ExperimentRules(stamp=12345, require=False)
    assert set(cache.rules_for(experiment.pk).rules) == {"tone"}


def test_cache_trusts_its_entry_for_the_recheck_period(experiment, settings, django_assert_num_queries):
    settings.FEEDBACKHUB_DEFINITIONS_RECHECK_MS = 60_000
    cache.rules_for(experiment.pk)
    with django_assert_num_queries(0):
        cache.rules_for(experiment.pk)


def test_enforce_requires_definitions_when_the_experiment_says_so(experiment):
    services.set_require_definitions(experiment=experiment, actor=SYSTEM, require=True)
    services.create_definition(experiment=experiment, actor=SYSTEM, name="ok", type="boolean")
    rules = cache.rules_for(experiment.pk)
    assert rules.enforce(name="ok", kind="feedback", value=True) == 1
    with pytest.raises(ValidationError) as caught:
        rules.enforce(name="other", kind="feedback", value=True)
    assert "requires definitions" in caught.value.message_dict["name"][0]
    with pytest.raises(ValidationError) as caught:
        rules.enforce(name="ok", kind="expectation", value=True)
    assert caught.value.message_dict["name"] == ["ok (v1) is defined as feedback; it cannot be written as expectation"]
    # feedback carrying only an error has no value to check
    assert rules.enforce(name="ok", kind="feedback", value=None, error={"error_code": "TIMEOUT"}) == 1


# --- native API ------------------------------------------------------------------------------


def url(experiment, *rest):
    return "/api/v1/experiments/" + "/".join([str(experiment.pk), "definitions", *rest])


HELPFULNESS = {
    "name": "helpfulness",
    "type": "number",
    "min": 1,
    "max": 5,
    "integer": True,
    "levels": {"1": "Useless", "5": "Perfect"},
    "description": "How much did the answer help?",
}


def test_api_create_read_update_versions_archive(api_client, experiment):
    created = api_client.post(url(experiment), HELPFULNESS, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["version"] == 1 and body["kind"] == "feedback" and body["levels"] == {"1": "Useless", "5": "Perfect"}
    assert body["archived"] is False and body["experiment_id"] == str(experiment.pk)
    assert api_client.post(url(experiment), HELPFULNESS, format="json").status_code == 409
    patched = api_client.patch(url(experiment, "helpfulness"), {"max": 10, "levels": None}, format="json")
    assert patched.status_code == 200, patched.content
    assert patched.json()["version"] == 2 and patched.json()["max"] == 10 and "levels" not in patched.json()
    assert api_client.get(url(experiment, "helpfulness")).json()["version"] == 2
    versions = api_client.get(url(experiment, "helpfulness", "versions")).json()
    assert [(v["version"], v["max"]) for v in versions] == [(1, 5), (2, 10)]
    assert versions[0]["created_by"].startswith("key:")
    assert api_client.delete(url(experiment, "helpfulness")).status_code == 204
    listed = api_client.get(url(experiment)).json()
    assert [(d["name"], d["archived"]) for d in listed] == [("helpfulness", True)]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "x", "type": "number", "min": 5, "max": 1}, "min"),
        ({"name": "x", "type": "category", "options": []}, "options"),
        ({"name": "x", "type": "boolean", "max_length": 3}, "max_length"),
        ({"name": "x", "type": "number", "colour": "red"}, "colour"),
        ({"name": "", "type": "boolean"}, "name"),
        ({"name": "x", "type": "scale"}, "type"),
        ({"name": "x", "type": "json", "json_schema": {"type": 5}}, "json_schema"),
    ],
)
def test_api_refuses_contradictory_definitions_with_400_naming_the_field(api_client, experiment, payload, field):
    response = api_client.post(url(experiment), payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not Definition.objects.exists()


def test_api_patch_cannot_make_a_definition_contradictory_or_rename_it(api_client, experiment):
    api_client.post(url(experiment), HELPFULNESS, format="json")
    assert api_client.patch(url(experiment, "helpfulness"), {"min": 9}, format="json").status_code == 400
    assert api_client.patch(url(experiment, "helpfulness"), {"name": "other"}, format="json").status_code == 400
    assert api_client.patch(url(experiment, "helpfulness"), {"kind": "expectation"}, format="json").status_code == 400
    assert DefinitionVersion.objects.count() == 1


def test_api_roles_reviewers_and_viewers_read_owners_and_staff_change(
    client, experiment, reviewer, viewer, owner, staff
):
    services.create_definition(experiment=experiment, actor=SYSTEM, name="tone", type="text")
    for user in (reviewer, viewer):
        api = APIClient()
        api.force_login(user)
        assert api.get(url(experiment)).status_code == 200
        assert api.get(url(experiment, "tone", "versions")).status_code == 200
        assert api.post(url(experiment), {"name": "a", "type": "boolean"}, format="json").status_code == 403
        assert api.patch(url(experiment, "tone"), {"max_length": 3}, format="json").status_code == 403
        assert api.delete(url(experiment, "tone")).status_code == 403
        assert (
            api.patch(f"/api/v1/experiments/{experiment.pk}", {"require_definitions": True}, format="json").status_code
            == 403
        )
    for user, name in ((owner, "b"), (staff, "c")):
        api = APIClient()
        api.force_login(user)
        assert api.post(url(experiment), {"name": name, "type": "boolean"}, format="json").status_code == 201
    outsider_api = APIClient()
    assert outsider_api.get(url(experiment)).status_code in (401, 403)


def test_api_other_experiments_definitions_are_not_found(api_client, other_experiment):
    assert api_client.get(url(other_experiment)).status_code == 404
    assert api_client.post(url(other_experiment), {"name": "a", "type": "boolean"}, format="json").status_code == 404


def test_api_require_definitions_through_experiment_patch(api_client, experiment):
    response = api_client.patch(f"/api/v1/experiments/{experiment.pk}", {"require_definitions": True}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["require_definitions"] is True
    experiment.refresh_from_db()
    assert experiment.require_definitions is True
    assert api_client.get(f"/api/v1/experiments/{experiment.pk}").json()["require_definitions"] is True
    bad = api_client.patch(f"/api/v1/experiments/{experiment.pk}", {"require_definitions": "maybe"}, format="json")
    assert bad.status_code == 400
