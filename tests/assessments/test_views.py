"""The assessments panel: every action with htmx and as a plain form, invalid input, refusals."""

import re

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from assessments import services
from assessments.forms import parse_metadata, parse_number
from assessments.models import Assessment, Revision
from traces.access import Actor

from ..factories import make_expectation, make_feedback, make_trace

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
XSS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']


def url(name, *args):
    return reverse(f"assessments:{name}", args=args)


def feedback_form(**overrides):
    data = {"name": "user_satisfaction", "value_type": "boolean", "value_boolean": "true", "rationale": ""}
    data.update(overrides)
    return data


def panel_of(html: str) -> str:
    start = html.index('<section id="assessment-panel"')
    end = html.index("</aside>") if "</aside>" in html else len(html)
    return html[start:end]


@pytest.fixture
def judged(trace):
    return make_feedback(
        trace, name="relevance", value=0.4, source_type="LLM_JUDGE", source_id="judge-1", rationale="off topic"
    )


@pytest.fixture
def alices(trace, reviewer):
    """A thumbs-up written by alice (the reviewer) through the UI."""
    return services.log_feedback(
        trace=trace,
        name="user_satisfaction",
        value=True,
        actor=Actor.for_user(reviewer),
        channel="ui",
        source_type="HUMAN",
        source_id="alice",
    )


# --- add feedback / expectation --------------------------------------------------------------------


def test_add_feedback_with_htmx_swaps_the_panel_and_fires_the_event(reviewer_client, trace):
    response = reviewer_client.post(
        url("feedback_create", trace.trace_id), feedback_form(rationale="clear and correct"), headers=HTMX
    )
    assert response.status_code == 200
    assert "assessments-changed" in response["HX-Trigger"]
    html = response.content.decode()
    assert html.startswith('<section id="assessment-panel"') and "<html" not in html
    assert "clear and correct" in html and "Added feedback" in html
    created = Assessment.objects.get(trace=trace)
    assert (created.value, created.source_type, created.source_id, created.rationale) == (
        True,
        "HUMAN",
        "alice",
        "clear and correct",
    )
    revision = Revision.objects.get(assessment_id=created.assessment_id)
    assert (revision.action, revision.channel, revision.actor_label) == ("create", "ui", "alice")


def test_add_feedback_without_javascript_redirects_to_the_trace_keeping_the_list(reviewer_client, trace):
    response = reviewer_client.post(
        url("feedback_create", trace.trace_id),
        feedback_form(filter="trace.status = 'OK'", sort="slowest", span=f"{2:016x}"),
    )
    assert response.status_code == 302
    created = Assessment.objects.get(trace=trace, value=True)
    assert response["Location"] == (
        f"/traces/{trace.trace_id}/?filter=trace.status+%3D+%27OK%27&sort=slowest&span={2:016x}#a-{created.assessment_id}"
    )


@pytest.mark.parametrize(
    "fields,expected",
    [
        ({"value_type": "number", "value_number": "0.75"}, 0.75),
        ({"value_type": "number", "value_number": "3"}, 3),
        ({"value_type": "number", "value_number": "0,5"}, 0.5),
        ({"value_type": "category", "value_category": "too_long"}, "too_long"),
        ({"value_type": "json", "value_json": '{"score": 2, "tags": ["a"]}'}, {"score": 2, "tags": ["a"]}),
        ({"value_type": "boolean", "value_boolean": "false"}, False),
    ],
)
def test_add_feedback_of_every_value_type(reviewer_client, trace, fields, expected):
    response = reviewer_client.post(
        url("feedback_create", trace.trace_id), feedback_form(name="q", **fields), headers=HTMX
    )
    assert response.status_code == 200
    value = Assessment.objects.get(trace=trace, name="q").value
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    "fields,field,message",
    [
        ({"name": ""}, "name", "This field is required."),
        ({"value_boolean": ""}, "value_boolean", "Choose thumbs up or thumbs down."),
        ({"value_type": "number", "value_number": "abc"}, "value_number", "is not a number"),
        ({"value_type": "number", "value_number": "nan"}, "value_number", "finite number"),
        ({"value_type": "json", "value_json": "{bad"}, "value_json", "not valid JSON"),
        ({"value_type": "category", "value_category": ""}, "value_category", "Enter a label."),
        ({"value_type": "weird"}, "value_type", "Select a valid choice"),
        ({"metadata": "no equals sign"}, "metadata", "Line 1 is not key=value."),
        ({"span_id": "zz"}, "span_id", "Not a span id."),
        ({"span_id": "00000000000000ff"}, "span_id", "is not part of trace"),
    ],
)
def test_add_feedback_shows_errors_next_to_the_field(reviewer_client, trace, fields, field, message):
    response = reviewer_client.post(url("feedback_create", trace.trace_id), feedback_form(**fields), headers=HTMX)
    assert response.status_code == 200  # htmx 2 swaps 200s: the form comes back with its errors
    html = response.content.decode()
    error = re.search(rf'<p class="field-error" id="af-{field}-error">([^<]*)</p>', html)
    assert error and message in error.group(1), html[:2000]
    assert f'aria-describedby="af-{field}-error"' in html or field in ("value_type", "span_id")
    assert not Assessment.objects.filter(trace=trace).exists()
    assert "assessments-changed" not in response.get("HX-Trigger", "")


def test_invalid_feedback_without_javascript_re_renders_the_page(reviewer_client, trace):
    response = reviewer_client.post(url("feedback_create", trace.trace_id), feedback_form(name="", rationale="keep me"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" in html and 'id="af-name-error"' in html and "keep me" in html


def test_feedback_can_target_the_selected_span(reviewer_client, trace):
    span = f"{2:016x}"
    page = reviewer_client.get(url("feedback_create", trace.trace_id) + f"?span={span}", headers=HTMX).content.decode()
    assert f'name="span_id" value="{span}"' in page and "step_1" in page
    reviewer_client.post(url("feedback_create", trace.trace_id), feedback_form(span_id=span, span=span), headers=HTMX)
    assert Assessment.objects.get(trace=trace).span_id == span


def test_add_feedback_form_suggests_names_used_in_the_experiment(reviewer_client, trace, experiment):
    make_feedback(make_trace(experiment), name="groundedness", value=0.3)
    html = reviewer_client.get(url("feedback_create", trace.trace_id), headers=HTMX).content.decode()
    assert '<datalist id="af-names"><option value="groundedness"></option>' in html
    assert 'value="reviewer_verdict"' in html  # the experiment's verdict is the default name


def test_opening_the_add_form_without_javascript_shows_the_page_with_the_form(reviewer_client, trace):
    response = reviewer_client.get(reverse("traces:trace_detail", args=[trace.trace_id]) + "?add=expectation")
    html = response.content.decode()
    assert "<html" in html and 'id="add-form-title">Add expectation' in html


def test_add_expectation(reviewer_client, trace):
    response = reviewer_client.post(
        url("expectation_create", trace.trace_id),
        {
            "name": "expected_response",
            "value_type": "category",
            "value_category": "MLflow is an open source platform.",
        },
        headers=HTMX,
    )
    assert response.status_code == 200
    expectation = Assessment.objects.get(trace=trace)
    assert expectation.kind == "expectation" and expectation.value == "MLflow is an open source platform."
    assert "MLflow is an open source platform." in response.content.decode()


def test_add_another_rating_under_an_existing_name(reviewer_client, trace, judged):
    form = reviewer_client.get(
        url("assessment_panel", trace.trace_id) + "?add=feedback&name=relevance", headers=HTMX
    ).content.decode()
    assert 'value="relevance"' in form and 'value="number" checked' in form  # same input as the first rater
    reviewer_client.post(
        url("feedback_create", trace.trace_id),
        feedback_form(name="relevance", value_type="number", value_number="0.9"),
        headers=HTMX,
    )
    assert sorted(Assessment.objects.filter(name="relevance").values_list("value", flat=True)) == [0.4, 0.9]


def test_viewers_may_not_add_feedback(client, viewer, trace):
    client.force_login(viewer)
    htmx = client.post(url("feedback_create", trace.trace_id), feedback_form(), headers=HTMX)
    assert htmx.status_code == 403
    assert "You need the reviewer role" in htmx.content.decode()
    assert htmx.content.decode().startswith('<section id="assessment-panel"')
    plain = client.post(url("feedback_create", trace.trace_id), feedback_form())
    assert plain.status_code == 403 and "You may not do that" in plain.content.decode()
    form = client.get(url("feedback_create", trace.trace_id), headers=HTMX).content.decode()
    assert "not add to it" in form and "add-form-title" not in form
    assert not Assessment.objects.exists()


def test_outsiders_get_not_found(client, outsider, trace, judged):
    client.force_login(outsider)
    assert client.post(url("feedback_create", trace.trace_id), feedback_form(), headers=HTMX).status_code == 404
    assert client.post(url("assessment_delete", judged.assessment_id), headers=HTMX).status_code == 404
    assert client.get(url("assessment_history", judged.assessment_id), headers=HTMX).status_code == 404
    assert client.get(url("assessment_panel", trace.trace_id), headers=HTMX).status_code == 404


def test_anonymous_posts_are_sent_to_sign_in(client, trace):
    response = client.post(url("feedback_create", trace.trace_id), feedback_form())
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_wrong_methods_are_refused(reviewer_client, trace, judged):
    assert reviewer_client.get(url("feedback_thumb", trace.trace_id)).status_code == 405
    assert reviewer_client.put(url("feedback_create", trace.trace_id)).status_code == 405
    assert reviewer_client.post(url("assessment_history", judged.assessment_id)).status_code == 405
    assert reviewer_client.post(url("assessment_panel", trace.trace_id)).status_code == 405


def test_posts_need_the_csrf_token(reviewer, trace):
    client = Client(enforce_csrf_checks=True)
    client.force_login(reviewer)
    assert client.post(url("feedback_create", trace.trace_id), feedback_form(), headers=HTMX).status_code == 403
    page = client.get(reverse("traces:trace_detail", args=[trace.trace_id])).content.decode()
    token = re.search(r'hx-headers=\'\{"x-csrftoken": "([^"]+)"\}\'', page).group(1)
    ok = client.post(url("feedback_create", trace.trace_id), feedback_form(), headers={**HTMX, "X-CSRFToken": token})
    assert ok.status_code == 200
    assert 'name="csrfmiddlewaretoken"' in page  # the no-JS forms carry it too


# --- thumbs (u / d) -------------------------------------------------------------------------------


def test_thumbs_add_then_change_the_reviewers_own_rating(reviewer_client, trace):
    first = reviewer_client.post(url("feedback_thumb", trace.trace_id), {"value": "true"}, headers=HTMX)
    assert first.status_code == 200 and "assessments-changed" in first["HX-Trigger"]
    assert 'data-hotkey="u" aria-label="Thumbs up"' in first.content.decode().replace('aria-pressed="true" ', "")
    assert 'aria-pressed="true" data-hotkey="u"' in first.content.decode()
    reviewer_client.post(url("feedback_thumb", trace.trace_id), {"value": "false"}, headers=HTMX)
    reviewer_client.post(url("feedback_thumb", trace.trace_id), {"value": "false"}, headers=HTMX)
    mine = Assessment.objects.get(trace=trace)
    assert (mine.name, mine.value, mine.version) == ("reviewer_verdict", False, 2)
    assert Revision.objects.filter(assessment_id=mine.assessment_id).count() == 2


def test_thumbs_use_the_experiments_verdict_not_a_name_from_the_data(reviewer_client, trace, experiment):
    make_feedback(make_trace(experiment), name="is_helpful", value=True)  # the most used boolean
    reviewer_client.post(url("feedback_thumb", trace.trace_id), {"value": "true"}, headers=HTMX)
    assert Assessment.objects.get(trace=trace).name == "reviewer_verdict"


def test_thumbs_leave_other_raters_alone(reviewer_client, trace):
    others = make_feedback(trace, value=True)  # user_123's
    reviewer_client.post(url("feedback_thumb", trace.trace_id), {"value": "false"})
    others.refresh_from_db()
    assert others.value is True and Assessment.objects.filter(trace=trace).count() == 2


def test_thumbs_need_a_value_and_the_reviewer_role(reviewer_client, client, viewer, trace):
    bad = reviewer_client.post(url("feedback_thumb", trace.trace_id), {"value": "maybe"}, headers=HTMX)
    assert bad.status_code == 200 and "Choose thumbs up or thumbs down." in bad.content.decode()
    assert reviewer_client.post(url("feedback_thumb", trace.trace_id), {"value": "maybe"}).status_code == 400
    client.force_login(viewer)
    assert client.post(url("feedback_thumb", trace.trace_id), {"value": "true"}, headers=HTMX).status_code == 403
    assert not Assessment.objects.exists()


# --- edit -----------------------------------------------------------------------------------------


def test_edit_form_opens_in_place_with_the_version(reviewer_client, alices):
    html = reviewer_client.get(url("assessment_update", alices.assessment_id), headers=HTMX).content.decode()
    item = html[html.index(f'id="a-{alices.assessment_id}"') :]
    assert item.index('id="edit-form-title"') < item.index("</li>")
    assert 'name="version" value="1"' in html and 'value="true" checked' in html


def test_edit_changes_value_rationale_and_metadata(reviewer_client, alices):
    response = reviewer_client.post(
        url("assessment_update", alices.assessment_id),
        {
            "value_type": "number",
            "value_number": "4",
            "rationale": "better than I thought",
            "metadata": "reason=second look\nticket=42",
            "version": "1",
        },
        headers=HTMX,
    )
    assert response.status_code == 200 and "assessments-changed" in response["HX-Trigger"]
    alices.refresh_from_db()
    assert (alices.value, alices.rationale, alices.metadata, alices.version) == (
        4,
        "better than I thought",
        {"reason": "second look", "ticket": "42"},
        2,
    )
    revision = Revision.objects.filter(assessment_id=alices.assessment_id).latest("id")
    assert (revision.action, revision.channel, revision.before["value"], revision.after["value"]) == (
        "update",
        "ui",
        True,
        4,
    )


def test_edit_without_javascript_redirects(reviewer_client, alices):
    response = reviewer_client.post(
        url("assessment_update", alices.assessment_id),
        {"value_type": "boolean", "value_boolean": "false", "rationale": "", "metadata": "", "version": "1"},
    )
    assert response.status_code == 302 and response["Location"].endswith(f"#a-{alices.assessment_id}")
    alices.refresh_from_db()
    assert alices.value is False


def test_a_stale_edit_shows_both_versions_instead_of_overwriting(reviewer_client, reviewer, alices, owner):
    services.update_assessment(assessment=alices, actor=Actor.for_user(owner), channel="api", rationale="owner's note")
    response = reviewer_client.post(
        url("assessment_update", alices.assessment_id),
        {
            "value_type": "boolean",
            "value_boolean": "false",
            "rationale": "my note",
            "metadata": "",
            "version": "1",
        },
        headers=HTMX,
    )
    assert response.status_code == 409  # swapped: htmx-config lets 403/409 through
    html = response.content.decode()
    assert "olivia changed this while you were editing" in html
    assert "owner&#x27;s note" in html and "my note" in html
    assert 'name="version" value="2"' in html  # saving again now is a deliberate overwrite
    alices.refresh_from_db()
    assert alices.rationale == "owner's note" and alices.value is True
    again = reviewer_client.post(
        url("assessment_update", alices.assessment_id),
        {
            "value_type": "boolean",
            "value_boolean": "false",
            "rationale": "my note",
            "metadata": "",
            "version": "2",
        },
        headers=HTMX,
    )
    assert again.status_code == 200
    alices.refresh_from_db()
    assert alices.rationale == "my note" and alices.value is False


def test_edit_with_invalid_input_keeps_the_form_open(reviewer_client, alices):
    response = reviewer_client.post(
        url("assessment_update", alices.assessment_id),
        {"value_type": "json", "value_json": "[1,", "rationale": "x", "metadata": "", "version": "1"},
        headers=HTMX,
    )
    assert response.status_code == 200
    assert (
        'id="af-value_json-error"' in response.content.decode() and 'id="edit-form-title"' in response.content.decode()
    )
    alices.refresh_from_db()
    assert alices.version == 1


def test_reviewers_may_not_edit_or_delete_other_peoples_feedback(client, other_reviewer, alices):
    client.force_login(other_reviewer)
    html = client.get(reverse("traces:trace_detail", args=[alices.trace_id])).content.decode()
    assert "Edit user_satisfaction" not in panel_of(html) and "Delete user_satisfaction" not in panel_of(html)
    edit = client.post(
        url("assessment_update", alices.assessment_id),
        {"value_type": "boolean", "value_boolean": "false", "version": "1"},
        headers=HTMX,
    )
    assert edit.status_code == 403 and "only edit your own" in edit.content.decode()
    assert (
        client.post(
            url("assessment_update", alices.assessment_id),
            {"value_type": "boolean", "value_boolean": "false", "version": "1"},
        ).status_code
        == 403
    )
    assert client.post(url("assessment_delete", alices.assessment_id), headers=HTMX).status_code == 403
    form = client.get(url("assessment_update", alices.assessment_id), headers=HTMX).content.decode()
    assert "only change your own" in form and "edit-form-title" not in form
    alices.refresh_from_db()
    assert alices.value is True


@pytest.mark.parametrize("persona", ["owner", "staff"])
def test_owners_and_staff_may_edit_anyones_feedback(client, alices, persona, request):
    client.force_login(request.getfixturevalue(persona))
    response = client.post(
        url("assessment_update", alices.assessment_id),
        {"value_type": "boolean", "value_boolean": "false", "rationale": "", "metadata": "", "version": "1"},
        headers=HTMX,
    )
    assert response.status_code == 200
    alices.refresh_from_db()
    assert alices.value is False


# --- override --------------------------------------------------------------------------------------


def test_override_a_judge_score_with_a_human_correction(reviewer_client, judged):
    html = reviewer_client.get(url("assessment_override", judged.assessment_id), headers=HTMX).content.decode()
    assert 'id="override-form-title"' in html and 'value="number" checked' in html
    response = reviewer_client.post(
        url("assessment_override", judged.assessment_id),
        {"value_type": "number", "value_number": "0.9", "rationale": "it is on topic"},
        headers=HTMX,
    )
    assert response.status_code == 200 and "assessments-changed" in response["HX-Trigger"]
    judged.refresh_from_db()
    correction = Assessment.objects.get(overrides=judged)
    assert judged.valid is False
    assert (correction.value, correction.source_type, correction.source_id, correction.valid) == (
        0.9,
        "HUMAN",
        "alice",
        True,
    )
    html = response.content.decode()
    old_item = html[html.index(f'id="a-{judged.assessment_id}"') :]
    assert 'class="item is-overridden"' in html
    assert f'overridden by <a href="#a-{correction.assessment_id}">' in old_item
    revision = Revision.objects.get(assessment_id=correction.assessment_id)
    assert (revision.action, revision.related_assessment_id, revision.channel) == (
        "override",
        judged.assessment_id,
        "ui",
    )


def test_override_twice_is_a_conflict_shown_in_the_panel(reviewer_client, judged, reviewer):
    services.override_feedback(
        assessment=judged,
        actor=Actor.for_user(reviewer),
        channel="ui",
        value=0.5,
        source_type="HUMAN",
        source_id="alice",
    )
    response = reviewer_client.post(
        url("assessment_override", judged.assessment_id), {"value_type": "number", "value_number": "0.7"}, headers=HTMX
    )
    assert response.status_code == 409 and "already overridden" in response.content.decode()
    assert Assessment.objects.filter(overrides=judged).count() == 1


def test_override_needs_a_value(reviewer_client, judged):
    response = reviewer_client.post(
        url("assessment_override", judged.assessment_id), {"value_type": "number", "value_number": ""}, headers=HTMX
    )
    assert response.status_code == 200 and 'id="af-value_number-error"' in response.content.decode()
    assert not Assessment.objects.filter(overrides=judged).exists()


def test_reviewers_may_not_override_another_humans_feedback(client, other_reviewer, alices):
    client.force_login(other_reviewer)
    html = client.get(reverse("traces:trace_detail", args=[alices.trace_id])).content.decode()
    assert "Override user_satisfaction" not in panel_of(html)
    response = client.post(
        url("assessment_override", alices.assessment_id),
        {"value_type": "boolean", "value_boolean": "false"},
        headers=HTMX,
    )
    assert response.status_code == 403
    assert not Assessment.objects.filter(overrides=alices).exists()


# --- delete ---------------------------------------------------------------------------------------


def test_delete_with_htmx_after_hx_confirm(reviewer_client, alices):
    page = reviewer_client.get(reverse("traces:trace_detail", args=[alices.trace_id])).content.decode()
    assert 'hx-confirm="Delete feedback “user_satisfaction” (true)? The history is kept."' in page
    response = reviewer_client.post(url("assessment_delete", alices.assessment_id), headers=HTMX)
    assert response.status_code == 200 and "assessments-changed" in response["HX-Trigger"]
    assert not Assessment.objects.filter(pk=alices.pk).exists()
    assert Revision.objects.filter(assessment_id=alices.assessment_id, action="delete", channel="ui").exists()


def test_delete_without_javascript_asks_first(reviewer_client, alices):
    first = reviewer_client.post(url("assessment_delete", alices.assessment_id))
    assert first.status_code == 200 and 'name="confirmed" value="yes"' in first.content.decode()
    assert Assessment.objects.filter(pk=alices.pk).exists()
    confirmed = reviewer_client.post(url("assessment_delete", alices.assessment_id), {"confirmed": "yes"})
    assert confirmed.status_code == 302
    assert not Assessment.objects.filter(pk=alices.pk).exists()


def test_deleting_an_override_restores_the_judge_score(reviewer_client, judged, reviewer):
    correction = services.override_feedback(
        assessment=judged,
        actor=Actor.for_user(reviewer),
        channel="ui",
        value=0.9,
        source_type="HUMAN",
        source_id="alice",
    )
    reviewer_client.post(url("assessment_delete", correction.assessment_id), headers=HTMX)
    judged.refresh_from_db()
    assert judged.valid is True


# --- history --------------------------------------------------------------------------------------


def test_history_inline_lists_who_when_channel_and_changes(reviewer_client, alices, reviewer):
    services.update_assessment(
        assessment=alices, actor=Actor.for_user(reviewer), channel="ui", value=False, rationale="changed my mind"
    )
    response = reviewer_client.get(url("assessment_history", alices.assessment_id), headers=HTMX)
    html = response.content.decode()
    assert html.startswith(f'<div id="history-{alices.assessment_id}" class="history"')
    assert html.count('class="revision rev-') == 2
    assert "<b>alice</b> created" in html and "<b>alice</b> edited" in html
    assert '<span class="channel">ui</span>' in html
    assert re.search(r"<del>true</del> <span aria-label=\"changed to\">→</span> <ins>false</ins>", html)


def test_history_of_an_overridden_judge_names_the_correction(reviewer_client, judged, reviewer):
    correction = services.override_feedback(
        assessment=judged,
        actor=Actor.for_user(reviewer),
        channel="ui",
        value=0.9,
        source_type="HUMAN",
        source_id="alice",
    )
    html = reviewer_client.get(url("assessment_history", judged.assessment_id), headers=HTMX).content.decode()
    assert "overridden by" in html and correction.assessment_id[:6] in html
    assert re.search(r"<del>0.4</del> <span aria-label=\"changed to\">→</span> <ins>0.9</ins>", html)


def test_history_without_javascript_and_after_delete(reviewer_client, alices, reviewer):
    inline = reviewer_client.get(
        reverse("traces:trace_detail", args=[alices.trace_id]) + f"?history={alices.assessment_id}"
    )
    assert f'<div id="history-{alices.assessment_id}" class="history"' in inline.content.decode()
    services.delete_assessment(assessment=alices, actor=Actor.for_user(reviewer), channel="ui")
    page = reviewer_client.get(url("assessment_history", alices.assessment_id))
    html = page.content.decode()
    assert page.status_code == 200 and "<html" in html
    assert "this assessment was deleted" in html and "<b>alice</b> deleted" in html


def test_panel_modes_for_missing_assessments_say_so(reviewer_client, trace):
    html = reviewer_client.get(
        url("assessment_panel", trace.trace_id) + "?edit=a-nothing", headers=HTMX
    ).content.decode()
    assert "no longer exists" in html
    plain = reviewer_client.get(url("assessment_panel", trace.trace_id) + "?add=feedback")
    assert plain.status_code == 302 and plain["Location"].endswith("?add=feedback#assessment-panel")


# --- safety, queries ------------------------------------------------------------------------------


def test_the_panel_escapes_names_values_rationales_and_metadata(reviewer_client, trace):
    for payload in XSS:
        reviewer_client.post(
            url("feedback_create", trace.trace_id),
            feedback_form(
                name=payload, rationale=payload, metadata=f"k={payload}", value_type="category", value_category=payload
            ),
            headers=HTMX,
        )
    assert Assessment.objects.filter(trace=trace).count() == 2
    html = reviewer_client.get(
        url("assessment_panel", trace.trace_id) + "?history=" + Assessment.objects.first().assessment_id, headers=HTMX
    ).content.decode()
    for payload in XSS:
        assert payload not in html
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_ui_and_api_write_the_same_rows(reviewer_client, reviewer, trace):
    reviewer_client.post(
        url("feedback_create", trace.trace_id), feedback_form(rationale="r", metadata="k=v"), headers=HTMX
    )
    api = reviewer_client.post(
        f"/api/v1/traces/{trace.trace_id}/feedback",
        {"name": "user_satisfaction", "value": True, "rationale": "r", "metadata": {"k": "v"}},
        content_type="application/json",
    )
    assert api.status_code == 201, api.content
    ui_row, api_row = Assessment.objects.filter(trace=trace).order_by("create_time")
    fields = [
        "name",
        "kind",
        "value",
        "rationale",
        "metadata",
        "source_type",
        "source_id",
        "span_id",
        "valid",
        "created_by_id",
    ]
    assert [getattr(ui_row, f) for f in fields] == [getattr(api_row, f) for f in fields]
    channels = [r.channel for r in Revision.objects.filter(trace_id=trace.trace_id).order_by("id")]
    assert channels == ["ui", "api"]


@pytest.mark.parametrize("count", [1, 40])
def test_panel_query_count_does_not_grow_with_assessments(reviewer_client, trace, django_assert_num_queries, count):
    for n in range(count):
        make_feedback(trace, name=f"n{n % 5}", value=n, source_type="LLM_JUDGE", span_id=f"{n % 3 + 1:016x}")
    make_feedback(trace, value=True)
    # session, user, trace, role, assessments, span names
    with django_assert_num_queries(6):
        assert reviewer_client.get(url("assessment_panel", trace.trace_id), headers=HTMX).status_code == 200


def test_form_parsers():
    assert parse_number(" 2 ") == 2 and parse_number("1e-3") == 0.001
    with pytest.raises(ValidationError, match="finite"):
        parse_number("inf")
    with pytest.raises(ValidationError, match="is not a number"):
        parse_number("four")
    assert parse_metadata("a=1\n\n b = two words \n") == {"a": "1", "b": "two words"}
    with pytest.raises(ValidationError, match="is not key=value"):
        parse_metadata("=x")


def test_expectations_cannot_be_overridden_and_show_as_text(reviewer_client, trace):
    expectation = make_expectation(trace, value="x" * 80)
    html = reviewer_client.get(reverse("traces:trace_detail", args=[trace.trace_id])).content.decode()
    assert f"Override {expectation.name}" not in html and '<div class="long-text"><bdi>' in html
    response = reviewer_client.post(
        url("assessment_override", expectation.assessment_id),
        {"value_type": "category", "value_category": "y"},
        headers=HTMX,
    )
    assert response.status_code == 409 and "only feedback can be overridden" in response.content.decode()
