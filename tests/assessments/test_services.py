"""The write path: every verb, its rules and the revision row it writes."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from assessments import services
from assessments.models import Assessment, Revision
from traces.access import Actor

from ..factories import make_expectation, make_feedback

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "value", [True, False, 4, 4.5, 0, -1, "friendly", "", ["a", 1, None], {"a": {"b": [1.0, 2]}, "ok": True}]
)
def test_values_come_back_exactly_as_sent(trace, value):
    feedback = make_feedback(trace, value=value)
    stored = Assessment.objects.get(pk=feedback.pk).value
    assert stored == value
    assert type(stored) is type(value)


def test_numeric_projection(trace):
    assert make_feedback(trace, value=True).numeric_value == 1.0
    assert make_feedback(trace, value=4).numeric_value == 4.0
    assert make_feedback(trace, value="x").numeric_value is None


def test_log_feedback_writes_one_create_revision(trace, reviewer):
    feedback = make_feedback(trace, actor=Actor.for_user(reviewer), channel="ui", rationale="helpful")
    [revision] = Revision.objects.all()
    assert (revision.action, revision.channel, revision.actor_user, revision.actor_label) == (
        "create",
        "ui",
        reviewer,
        "alice",
    )
    assert revision.assessment_id == feedback.pk and revision.trace_id == trace.pk
    assert revision.before is None and revision.after["value"] is True and revision.after["rationale"] == "helpful"
    assert feedback.assessment_id.startswith("a-") and len(feedback.assessment_id) == 34


def test_feedback_may_carry_error_instead_of_value(trace):
    feedback = make_feedback(trace, value=None, error={"error_code": "TimeoutError", "error_message": "slow"})
    assert feedback.error == {"error_code": "TimeoutError", "error_message": "slow"} and feedback.value is None


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"value": None}, "value"),
        ({"name": ""}, "name"),
        ({"name": "x" * 251}, "name"),
        ({"source_type": "ROBOT"}, "source.source_type"),
        ({"metadata": {"k": 1}}, "metadata"),
        ({"span_id": "ffffffffffffffff"}, "span_id"),
        ({"span_id": "nothex"}, "span_id"),
        ({"value": float("nan")}, "value"),
        ({"error": {"error_message": "no code"}, "value": None}, "error"),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(trace, kwargs, field):
    with pytest.raises(ValidationError) as info:
        make_feedback(trace, **kwargs)
    assert field in info.value.message_dict
    assert not Assessment.objects.exists() and not Revision.objects.exists()


def test_span_id_must_name_a_span_of_the_trace(trace):
    feedback = make_feedback(trace, span_id="0000000000000002")
    assert feedback.span_id == "0000000000000002"


def test_expectation_needs_value_and_no_error(trace):
    assert make_expectation(trace, value={"facts": ["a"]}).kind == "expectation"
    with pytest.raises(ValidationError):
        make_expectation(trace, value=None)


def test_several_raters_share_a_name(trace):
    make_feedback(trace, source_id="u1")
    make_feedback(trace, source_id="u2", value=False)
    assert trace.assessments.filter(name="user_satisfaction").count() == 2


def test_update_writes_one_update_revision_and_keeps_source_and_span(trace, reviewer):
    actor = Actor.for_user(reviewer)
    feedback = make_feedback(trace, actor=actor, span_id="0000000000000002")
    updated = services.update_assessment(
        assessment=feedback, actor=actor, channel="ui", value=False, rationale="changed", metadata={"k": "v"}
    )
    assert (updated.value, updated.rationale, updated.metadata, updated.version) == (False, "changed", {"k": "v"}, 2)
    assert updated.span_id == "0000000000000002" and updated.source_id == "user_123"
    revision = Revision.objects.get(action="update")
    assert revision.before["value"] is True and revision.after["value"] is False
    assert [change[0] for change in revision.changes] == ["value", "rationale", "metadata"]


def test_update_refuses_source_and_span(trace):
    feedback = make_feedback(trace)
    with pytest.raises(ValidationError):
        services.update_assessment(assessment=feedback, actor=Actor.for_system("t"), channel="api", span_id="x")


def test_update_without_change_writes_nothing(trace):
    feedback = make_feedback(trace)
    services.update_assessment(assessment=feedback, actor=Actor.for_system("t"), channel="api", value=True)
    assert Revision.objects.count() == 1


def test_stale_version_is_refused(trace):
    feedback = make_feedback(trace)
    actor = Actor.for_system("t")
    services.update_assessment(assessment=feedback, actor=actor, channel="api", value=False, expected_version=1)
    with pytest.raises(services.StaleVersion):
        services.update_assessment(assessment=feedback, actor=actor, channel="api", value=True, expected_version=1)
    assert Assessment.objects.get(pk=feedback.pk).value is False


def test_override_and_delete_restore(trace, reviewer):
    judge = make_feedback(trace, name="relevance", value=0.6, source_type="LLM_JUDGE", source_id="gpt")
    actor = Actor.for_user(reviewer)
    new = services.override_feedback(assessment=judge, actor=actor, channel="ui", value=0.9, source_id="alice")
    judge.refresh_from_db()
    assert (judge.valid, new.valid, new.overrides_id, new.name) == (False, True, judge.pk, "relevance")
    override_rev = Revision.objects.get(action="override")
    assert override_rev.assessment_id == new.pk and override_rev.related_assessment_id == judge.pk
    with pytest.raises(services.Conflict):
        services.override_feedback(assessment=judge, actor=actor, channel="ui", value=0.1)
    services.delete_assessment(assessment=new, actor=actor, channel="ui")
    judge.refresh_from_db()
    assert judge.valid is True
    delete_rev = Revision.objects.get(action="delete")
    assert delete_rev.related_assessment_id == judge.pk and delete_rev.after is None
    assert Revision.objects.count() == 3  # create, override, delete: one per call


def test_expectations_cannot_be_overridden(trace):
    expectation = make_expectation(trace)
    with pytest.raises(services.Conflict):
        services.override_feedback(assessment=expectation, actor=Actor.for_system("t"), channel="api", value="x")


def test_revisions_survive_delete(trace):
    feedback = make_feedback(trace)
    services.delete_assessment(assessment=feedback, actor=Actor.for_system("t"), channel="api")
    assert list(Revision.objects.values_list("action", flat=True)) == ["create", "delete"]


def test_permissions(trace, reviewer, other_reviewer, viewer, owner, outsider):
    with pytest.raises(PermissionDenied):
        make_feedback(trace, actor=Actor.for_user(viewer))
    with pytest.raises(PermissionDenied):
        make_feedback(trace, actor=Actor.for_user(outsider))
    mine = make_feedback(trace, actor=Actor.for_user(reviewer))
    with pytest.raises(PermissionDenied):
        services.update_assessment(assessment=mine, actor=Actor.for_user(other_reviewer), channel="ui", value=False)
    with pytest.raises(PermissionDenied):
        services.delete_assessment(assessment=mine, actor=Actor.for_user(other_reviewer), channel="ui")
    services.update_assessment(assessment=mine, actor=Actor.for_user(owner), channel="ui", value=False)
    services.delete_assessment(assessment=mine, actor=Actor.for_user(owner), channel="ui")


def test_idempotency_key_never_duplicates(trace):
    first = make_feedback(trace, idempotency_key="k1")
    again = make_feedback(trace, idempotency_key="k1")
    assert first.pk == again.pk and again.replayed
    assert Assessment.objects.count() == 1 and Revision.objects.count() == 1
    with pytest.raises(services.Conflict):
        make_feedback(trace, name="other", idempotency_key="k1")


def test_duplicate_assessment_id_is_a_conflict(trace):
    make_feedback(trace, assessment_id="a-client-chosen-0001")
    with pytest.raises(services.Conflict):
        make_feedback(trace, assessment_id="a-client-chosen-0001")
