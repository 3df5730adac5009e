"""The definitions page (owners change, members read), proposals from the data, and admin."""

import pytest

from assessments.definitions import services
from assessments.definitions.models import Definition, DefinitionVersion
from assessments.definitions.propose import proposals_for, propose
from traces.access import Actor

from ..factories import make_feedback, make_trace

SYSTEM = Actor.for_system("test")


def page(experiment, *rest):
    return "/experiments/" + "/".join([str(experiment.pk), "definitions", *rest]) + "/"


NEW_SCALE = {
    "name": "helpfulness",
    "kind": "feedback",
    "type": "number",
    "min": "1",
    "max": "5",
    "integer": "on",
    "levels": "1 = Useless\n5 = Perfect",
    "description": "How much did it help?",
}


def test_owner_defines_edits_to_a_new_version_and_archives(client, owner, experiment):
    client.force_login(owner)
    response = client.post(page(experiment), NEW_SCALE)
    assert response.status_code == 302, response.content.decode()[:2000]
    version = DefinitionVersion.objects.get()
    assert version.constraints == {"min": 1, "max": 5, "integer": True, "levels": {"1": "Useless", "5": "Perfect"}}
    listing = client.get(page(experiment)).content.decode()
    assert "helpfulness" in listing and "Useless" in listing and "v1" in listing
    edit = client.get(page(experiment, "helpfulness", "edit"))
    assert edit.status_code == 200 and "1 = Useless" in edit.content.decode()
    response = client.post(page(experiment, "helpfulness", "edit"), {**NEW_SCALE, "max": "7"})
    assert response.status_code == 302
    assert Definition.objects.get().current_version == 2
    versions = client.get(page(experiment, "helpfulness", "versions")).content.decode()
    assert "v2" in versions and "v1" in versions and "olivia" in versions
    assert client.post(page(experiment, "helpfulness", "archive")).status_code == 302
    assert Definition.objects.get().is_archived


def test_contradictory_definition_shows_the_error_on_the_form(client, owner, experiment):
    client.force_login(owner)
    response = client.post(page(experiment), {**NEW_SCALE, "min": "9"})
    assert response.status_code == 200
    assert "min (9) is greater than max (5)" in response.content.decode()
    assert not Definition.objects.exists()


def test_reviewer_reads_but_cannot_change(client, reviewer, experiment):
    services.create_definition(experiment=experiment, actor=SYSTEM, name="tone", type="text")
    client.force_login(reviewer)
    listing = client.get(page(experiment))
    assert listing.status_code == 200 and "tone" in listing.content.decode()
    assert "New definition" not in listing.content.decode()
    assert client.post(page(experiment), NEW_SCALE).status_code == 403
    assert client.get(page(experiment, "tone", "edit")).status_code == 403
    assert client.post(page(experiment, "tone", "archive")).status_code == 403
    assert client.post(page(experiment, "require"), {"require": "on"}).status_code == 403


def test_owner_switches_require_definitions(client, owner, experiment):
    client.force_login(owner)
    client.post(page(experiment, "require"), {"require": "on"})
    experiment.refresh_from_db()
    assert experiment.require_definitions
    client.post(page(experiment, "require"), {})
    experiment.refresh_from_db()
    assert not experiment.require_definitions


@pytest.mark.parametrize(
    ("values", "type_", "constraints"),
    [
        ([True, False, True], "boolean", {}),
        ([1, 3, 5, 4], "number", {"min": 1, "max": 5, "integer": True}),
        ([0.2, 0.9], "number", {"min": 0.2, "max": 0.9, "integer": False}),
        (
            ["billing", "billing", "shipping", "shipping"],
            "category",
            {"options": [{"value": "billing"}, {"value": "shipping"}], "multiple": False},
        ),
        (["a long free text", "another one"], "text", {}),
        ([["a", "b"], ["a"], ["b"]], "category", {"options": [{"value": "a"}, {"value": "b"}], "multiple": True}),
        ([1, "x"], "json", {}),
    ],
)
def test_propose_reads_types_ranges_and_categories_from_values(values, type_, constraints):
    proposal = propose(values, "q", "feedback")
    assert (proposal.type, proposal.constraints) == (type_, constraints)
    assert proposal.count == len(values)


def test_owner_accepts_a_proposal_and_it_becomes_a_definition(client, owner, experiment):
    trace = make_trace(experiment)
    for value in (1, 2, 5, 5):
        make_feedback(trace, name="stars", value=value)
    make_feedback(trace, name="topic", value="billing")
    make_feedback(trace, name="topic", value="billing")
    proposals = {p.name: p for p in proposals_for(experiment.pk)}
    assert proposals["stars"].counts == [("1", 1), ("2", 1), ("3", 0), ("4", 0), ("5", 2)]
    client.force_login(owner)
    shown = client.get(page(experiment, "propose")).content.decode()
    assert 'data-proposal="stars"' in shown and "integers from 1 to 5" in shown
    response = client.post(page(experiment, "propose"), {"accept": "stars"})
    assert response.status_code == 302
    version = DefinitionVersion.objects.get(definition__name="stars")
    assert (version.type, version.constraints) == ("number", {"min": 1, "max": 5, "integer": True})
    filled = client.post(page(experiment, "propose"), {"edit": "topic"}).content.decode()
    assert "billing" in filled and 'value="category" selected' in filled.replace('selected=""', "selected")


def test_admin_creates_versions_and_archives_through_the_services(client, staff, experiment):
    client.force_login(staff)
    add = client.post(
        "/admin/assessments/definition/add/",
        {
            "experiment": experiment.pk,
            "name": "stars",
            "kind": "feedback",
            "type": "number",
            "description": "",
            "constraints": '{"min": 1, "max": 5, "integer": true}',
            "versions-TOTAL_FORMS": "0",
            "versions-INITIAL_FORMS": "0",
        },
    )
    assert add.status_code == 302, add.content.decode()[:3000]
    definition = Definition.objects.get()
    bad = client.post(
        f"/admin/assessments/definition/{definition.pk}/change/",
        {
            "type": "number",
            "description": "",
            "constraints": '{"min": 9, "max": 5}',
            "versions-TOTAL_FORMS": "0",
            "versions-INITIAL_FORMS": "0",
        },
    )
    assert bad.status_code == 200 and "greater than max" in bad.content.decode()
    good = client.post(
        f"/admin/assessments/definition/{definition.pk}/change/",
        {
            "type": "number",
            "description": "",
            "constraints": '{"min": 1, "max": 10}',
            "versions-TOTAL_FORMS": "0",
            "versions-INITIAL_FORMS": "0",
        },
    )
    assert good.status_code == 302
    definition.refresh_from_db()
    assert definition.current_version == 2
    assert definition.versions.get(version=2).constraints == {"min": 1, "max": 10, "integer": False}
    client.post(f"/admin/assessments/definition/{definition.pk}/delete/", {"post": "yes"})
    definition.refresh_from_db()
    assert definition.is_archived and definition.versions.count() == 2


# --- the panel's forms built from definitions --------------------------------------------------


@pytest.fixture
def rubric(experiment):
    services.create_definition(
        experiment=experiment,
        actor=SYSTEM,
        name="helpfulness",
        type="number",
        min=1,
        max=5,
        integer=True,
        levels={"1": "Useless", "5": "Perfect"},
        description="How much did it help?",
    )
    services.create_definition(
        experiment=experiment,
        actor=SYSTEM,
        name="topic",
        type="category",
        options=[{"value": "billing", "label": "Billing", "description": "Invoices"}, "shipping"],
    )
    services.create_definition(
        experiment=experiment, actor=SYSTEM, name="tags", type="category", options=["a", "b", "c"], multiple=True
    )
    services.create_definition(experiment=experiment, actor=SYSTEM, name="note", type="text", max_length=80)
    services.create_definition(experiment=experiment, actor=SYSTEM, name="score", type="number", min=0, max=1)


def panel(client, trace, **params):
    response = client.get(f"/traces/{trace.trace_id}/assessments/", params, headers={"HX-Request": "true"})
    assert response.status_code == 200
    return response.content.decode()


def test_add_form_shows_level_buttons_with_descriptions(reviewer_client, trace, rubric):
    html = panel(reviewer_client, trace, add="feedback", name="helpfulness")
    assert 'data-definition="helpfulness"' in html and "How much did it help?" in html
    for step in range(1, 6):
        assert f'name="value_number" value="{step}" data-key="{step}"' in html
    assert "<small>Useless</small>" in html and "<small>Perfect</small>" in html
    assert 'name="value_type" value="segmented"' not in html and 'class="segmented"' not in html


def test_add_form_shows_radios_checkboxes_text_counter_and_bounded_number(reviewer_client, trace, rubric):
    topic = panel(reviewer_client, trace, add="feedback", name="topic")
    assert 'type="radio" name="value_category" value="billing" data-key="1"' in topic and "Invoices" in topic
    tags = panel(reviewer_client, trace, add="feedback", name="tags")
    assert 'type="checkbox" name="value_options" value="c" data-key="3"' in tags
    note = panel(reviewer_client, trace, add="feedback", name="note")
    assert 'maxlength="80"' in note and "data-def-count" in note
    score = panel(reviewer_client, trace, add="feedback", name="score")
    assert 'type="number" name="value_number"' in score and 'min="0"' in score and 'max="1"' in score
    free = panel(reviewer_client, trace, add="feedback", name="undefined_name")
    assert 'class="segmented"' in free and "data-def-keys" not in free
    assert 'name="name" value="helpfulness"' in free  # the defined names to pick from


def test_checkboxes_store_a_list_and_edit_shows_them_checked(reviewer_client, trace, rubric):
    from assessments.models import Assessment

    response = reviewer_client.post(
        f"/traces/{trace.trace_id}/feedback/new/",
        {"name": "tags", "value_type": "options", "value_options": ["a", "c"]},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    stored = Assessment.objects.get()
    assert (stored.value, stored.definition_version) == (["a", "c"], 1)
    edit = panel(reviewer_client, trace, edit=stored.assessment_id)
    assert 'value="a" data-key="1" checked' in edit and 'value="b" data-key="2">' in edit
