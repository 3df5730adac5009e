"""The verbs of assessments.services, one by one: what each decides, the outcome it reports and
the revisions it writes; held feedback (create, update, delete, attach, expire) included."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.utils import timezone

from assessments import services
from assessments.models import Assessment, PendingAssessment, Revision
from assessments.services import held, validation
from traces import services as trace_services
from traces.access import Actor

from ..factories import SYSTEM, make_api_key, make_experiment, make_spans, make_trace
from ..mlflow.payloads import new_trace_id

pytestmark = pytest.mark.django_db


@pytest.fixture
def key_actor(experiment):
    key, _ = make_api_key(experiment)
    return Actor.for_key(key)


def actions(assessment_id):
    return [(r.action, r.experiment_id) for r in Revision.objects.filter(assessment_id=assessment_id).order_by("id")]


def create(actor, trace_id, **fields):
    return services.create(
        kind=fields.pop("kind", "feedback"), trace_id=trace_id, actor=actor, channel="api", name="n", **fields
    )


# --- create ----------------------------------------------------------------------------------------


def test_create_reports_created_then_replayed_for_the_same_idempotency_key(trace, key_actor, experiment):
    first = create(key_actor, trace.pk, value=True, idempotency_key="k1")
    again = create(key_actor, trace.pk, value=True, idempotency_key="k1")
    assert (first.outcome, again.outcome) == (services.CREATED, services.REPLAYED)
    assert again.assessment.pk == first.assessment.pk and again.replayed
    assert actions(first.assessment.pk) == [("create", experiment.pk)]


def test_create_holds_for_an_unseen_trace_and_writes_its_revision(key_actor):
    trace_id = new_trace_id()
    result = create(key_actor, trace_id, value=0.5)
    assert result.outcome == services.HELD and result.assessment.pending
    assert PendingAssessment.objects.get().pk == result.assessment.pk
    # held: no experiment yet
    assert actions(result.assessment.pk) == [("create", None)]


def test_a_user_cannot_hold_feedback(reviewer):
    with pytest.raises(Http404):
        create(Actor.for_user(reviewer), new_trace_id(), value=True)
    assert not PendingAssessment.objects.exists() and not Revision.objects.exists()


def test_an_unknown_trace_answers_404_before_bad_input(reviewer):
    with pytest.raises(Http404):
        create(Actor.for_user(reviewer), new_trace_id(), value=None)


def test_bad_input_on_a_stored_trace_is_a_validation_error(trace, key_actor):
    with pytest.raises(ValidationError) as caught:
        create(key_actor, trace.pk, value=float("nan"))
    assert "value" in caught.value.message_dict and not Assessment.objects.exists()


def test_a_taken_client_id_is_a_duplicate(trace, key_actor):
    create(key_actor, trace.pk, value=True, assessment_id="a-mine")
    with pytest.raises(services.DuplicateId):
        create(key_actor, new_trace_id(), value=True, assessment_id="a-mine")


def test_create_with_overrides_dispatches_to_override_and_keeps_the_kind_rule(trace, key_actor, experiment):
    judge = create(key_actor, trace.pk, value=0.2, source_type="LLM_JUDGE").assessment
    fixed = create(key_actor, trace.pk, value=0.9, overrides=judge.pk).assessment
    assert fixed.overrides_id == judge.pk and not Assessment.objects.get(pk=judge.pk).valid
    [revision] = Revision.objects.filter(assessment_id=fixed.pk)
    assert (revision.action, revision.related_assessment_id) == ("override", judge.pk)
    expectation = create(key_actor, trace.pk, kind="expectation", value="x").assessment
    with pytest.raises(ValidationError, match="only feedback can be overridden"):
        create(key_actor, trace.pk, value=1, overrides=expectation.pk)
    with pytest.raises(Assessment.DoesNotExist):
        create(key_actor, trace.pk, value=1, overrides="a-nothing")


def test_span_feedback_waits_for_its_span_only_on_the_mlflow_protocol(experiment, key_actor):
    trace = make_trace(experiment, spans=1)
    missing = "00000000000000ff"
    with pytest.raises(ValidationError, match="not part of trace"):
        create(key_actor, trace.pk, value=True, span_id=missing)
    held_result = services.create(
        kind="feedback", trace_id=trace.pk, actor=key_actor, channel="mlflow", name="n", value=True, span_id=missing
    )
    assert held_result.outcome == services.HELD


# --- update, delete, override, rate ------------------------------------------------------------------


def test_update_writes_one_revision_and_nothing_when_nothing_changes(trace, key_actor):
    assessment = create(key_actor, trace.pk, value=1).assessment
    updated = services.update(assessment=assessment, actor=key_actor, channel="api", value=2)
    assert updated.version == 2
    services.update(assessment=updated, actor=key_actor, channel="api", value=2)
    assert [action for action, _ in actions(assessment.pk)] == ["create", "update"]
    with pytest.raises(services.StaleVersion):
        services.update(assessment=updated, actor=key_actor, channel="api", value=3, expected_version=1)
    with pytest.raises(ValidationError):
        services.update(assessment=updated, actor=key_actor, channel="api", span_id="x")


def test_delete_checks_the_expected_version_and_restores_the_overridden(trace, key_actor):
    judge = create(key_actor, trace.pk, value=0.2, source_type="LLM_JUDGE").assessment
    fixed = services.override(assessment=judge, actor=key_actor, channel="api", value=0.8)
    with pytest.raises(services.StaleVersion):
        services.delete(assessment=fixed, actor=key_actor, channel="api", expected_version=7)
    services.delete(assessment=fixed, actor=key_actor, channel="api", expected_version=1)
    assert Assessment.objects.get(pk=judge.pk).valid
    [revision] = Revision.objects.filter(assessment_id=fixed.pk, action="delete")
    assert revision.related_assessment_id == judge.pk


def test_permission_predicates_match_what_the_verbs_allow(trace, reviewer, other_reviewer, owner):
    mine = services.log_feedback(trace=trace, name="n", value=True, actor=Actor.for_user(reviewer), channel="ui")
    other = Actor.for_user(other_reviewer)
    assert services.can_change(Actor.for_user(reviewer), mine) and services.can_change(Actor.for_user(owner), mine)
    assert not services.can_change(other, mine) and not services.can_override(other, mine)
    with pytest.raises(PermissionDenied):
        services.update(assessment=mine, actor=other, channel="ui", value=False)
    judge = services.log_feedback(
        trace=trace, name="j", value=0.1, source_type="LLM_JUDGE", actor=SYSTEM, channel="api"
    )
    assert services.can_override(other, judge)
    services.override(assessment=judge, actor=other, channel="ui", value=0.9)
    assert not services.can_override(other, Assessment.objects.get(pk=judge.pk))  # no longer valid


def test_rate_adds_then_changes_the_reviewers_own_thumb(trace, reviewer):
    actor = Actor.for_user(reviewer)
    first = services.rate(trace=trace, actor=actor, channel="ui", value=True)
    second = services.rate(trace=trace, actor=actor, channel="ui", value=False, name="reviewer_verdict")
    same = services.rate(trace=trace, actor=actor, channel="ui", value=False)
    assert first.pk == second.pk == same.pk and Assessment.objects.get().value is False
    assert [action for action, _ in actions(first.pk)] == ["create", "update"]


# --- held feedback -------------------------------------------------------------------------------------


def test_held_update_and_delete_write_revisions(key_actor):
    trace_id = new_trace_id()
    shown = create(key_actor, trace_id, value=1).assessment
    updated = services.update(assessment=shown, actor=key_actor, channel="api", value=2, rationale="why")
    assert (updated.value, updated.rationale, updated.version) == (2, "why", 2)
    with pytest.raises(services.StaleVersion):
        services.update(assessment=updated, actor=key_actor, channel="api", value=3, expected_version=1)
    with pytest.raises(ValidationError):
        services.update(assessment=updated, actor=key_actor, channel="api", value=float("inf"))
    services.delete(assessment=updated, actor=key_actor, channel="api")
    assert not PendingAssessment.objects.exists()
    assert actions(shown.pk) == [("create", None), ("update", None), ("delete", None)]


def test_another_key_cannot_change_held_feedback(key_actor, experiment):
    shown = create(key_actor, new_trace_id(), value=1).assessment
    stranger = Actor.for_key(make_api_key(experiment)[0])
    with pytest.raises(PendingAssessment.DoesNotExist):
        services.update(assessment=shown, actor=stranger, channel="api", value=2)


def test_attaching_keeps_the_history_and_the_state(key_actor, experiment):
    trace_id = new_trace_id()
    shown = create(key_actor, trace_id, value=1, metadata={"a": "1"}).assessment
    services.update(assessment=shown, actor=key_actor, channel="api", value=2)
    override = create(key_actor, trace_id, value=3, overrides=shown.pk).assessment
    make_trace(experiment, spans=1, trace_id=trace_id)
    old, new = Assessment.objects.get(pk=shown.pk), Assessment.objects.get(pk=override.pk)
    assert (old.value, old.metadata, old.valid, new.overrides_id, new.value) == (2, {"a": "1"}, False, old.pk, 3)
    assert old.version == 3  # created, updated, overridden
    assert actions(shown.pk) == [("create", experiment.pk), ("update", experiment.pk)]
    assert actions(override.pk) == [("override", experiment.pk)]
    assert not PendingAssessment.objects.exists()


def test_attach_runs_on_every_ingest_that_brings_the_awaited_span(key_actor, experiment):
    trace = make_trace(experiment, spans=1, metadata={"mlflow.trace.sizeStats": '{"num_spans": 2}'})
    waiting = services.create(
        kind="feedback",
        trace_id=trace.pk,
        actor=key_actor,
        channel="mlflow",
        name="n",
        value=True,
        span_id=make_spans(2)[1]["span_id"],
    )
    assert waiting.outcome == services.HELD
    trace_services.ingest_trace(
        experiment=experiment, actor=SYSTEM, channel="api", trace_id=trace.pk, spans=make_spans(2)
    )
    assert Assessment.objects.get().pk == waiting.assessment.pk


def test_expiry_closes_the_history_with_a_delete(key_actor):
    shown = create(key_actor, new_trace_id(), value=1).assessment
    assert held.expire(now=timezone.now() + timedelta(days=365))
    assert [action for action, _ in actions(shown.pk)] == ["create", "delete"]
    assert Revision.objects.get(action="delete").actor_label == "system:expired"


# --- the one validator's experiment rules ------------------------------------------------------------


def test_an_experiment_rule_applies_to_single_batch_and_held_writes(monkeypatch, experiment, key_actor):
    def only_booleans(experiment_id, kind, fields):
        if kind == "feedback" and fields.get("value") is not None and not isinstance(fields["value"], bool):
            raise ValidationError({"value": f"experiment {experiment_id} takes booleans"})

    monkeypatch.setattr(validation, "EXPERIMENT_RULES", [only_booleans])
    trace = make_trace(experiment, spans=1)
    with pytest.raises(ValidationError, match="takes booleans"):
        create(key_actor, trace.pk, value=3)
    with pytest.raises(services.BatchValidationError):
        services.log_feedback_batch(
            items=[{"trace_id": trace.pk, "name": "n", "value": 3}], actor=key_actor, channel="api"
        )
    assert create(key_actor, trace.pk, value=True).outcome == services.CREATED
    # held by a key scoped to one experiment: the trace can only land there, so checked when held
    with pytest.raises(ValidationError, match="takes booleans"):
        create(key_actor, new_trace_id(), value=3)
    # held by a key of several experiments: the experiment is not known yet, checked when attached
    multi_key, _ = make_api_key(experiment, make_experiment("another"))
    trace_id = new_trace_id()
    create(Actor.for_key(multi_key), trace_id, value=3)
    make_trace(experiment, spans=1, trace_id=trace_id)
    assert not Assessment.objects.filter(trace_id=trace_id).exists()  # refused when attached
    assert [r.action for r in Revision.objects.filter(trace_id=trace_id).order_by("id")] == ["create", "delete"]
