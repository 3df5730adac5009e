"""Feedback that arrives before its trace: held, readable, editable, attached on arrival, expired."""

import logging
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from assessments import services
from assessments.models import Assessment, PendingAssessment, Revision
from traces.models import Trace

from ..factories import make_api_key, make_experiment, make_spans
from . import payloads
from .payloads import new_trace_id, span_hex
from .rawapi import V3, MlflowApi, error

pytestmark = pytest.mark.django_db


def test_feedback_before_start_trace_is_held_then_attached(api, experiment):
    trace_id = new_trace_id()
    response = api.log(trace_id, payloads.feedback(rationale="User indicated response was helpful"))
    assert response.status_code == 200
    pending = response.json()["assessment"]
    assert (pending["trace_id"], pending["valid"], pending["feedback"]) == (trace_id, True, {"value": True})
    assert not Assessment.objects.exists() and PendingAssessment.objects.get().trace_id == trace_id
    # reads answer consistently meanwhile
    got = api.get(f"{V3}/traces/{trace_id}/assessments/{pending['assessment_id']}").json()["assessment"]
    assert got == pending
    error(api.get(f"{V3}/traces/{trace_id}"), 404, "RESOURCE_DOES_NOT_EXIST")  # the trace itself is not there yet

    api.start(trace_id, experiment.pk, num_spans=2)
    attached = Assessment.objects.get()
    assert (attached.pk, attached.trace_id, attached.value, attached.rationale) == (
        pending["assessment_id"],
        trace_id,
        True,
        "User indicated response was helpful",
    )
    assert attached.create_time.isoformat() == "2026-11-26T14:22:33.625000+00:00"
    [revision] = Revision.objects.filter(assessment_id=attached.pk)
    assert (revision.action, revision.channel, revision.experiment_id) == ("create", "mlflow", experiment.pk)
    assert not PendingAssessment.objects.exists()
    info = api.get(f"{V3}/traces/{trace_id}").json()["trace"]["trace_info"]
    assert [a["assessment_id"] for a in info["assessments"]] == [pending["assessment_id"]]


def test_feedback_before_otlp_spans_is_attached_by_them(api, experiment):
    trace_id = new_trace_id()
    assessment_id = api.log(trace_id, payloads.feedback()).json()["assessment"]["assessment_id"]
    api.otlp(trace_id, payloads.mlflow_spans(trace_id), experiment.pk)
    assert Assessment.objects.get().pk == assessment_id


def test_updates_and_overrides_while_pending_replay_with_their_revisions(api, experiment):
    trace_id = new_trace_id()
    first = api.log(trace_id, payloads.feedback("relevance", 0.6, metadata={"a": "1"})).json()["assessment"][
        "assessment_id"
    ]
    updated = api.patch(
        f"{V3}/traces/{trace_id}/assessments/{first}",
        {
            "assessment": {"feedback": {"value": 0.7}, "metadata": {"b": "2"}},
            "update_mask": "feedback,metadata",
        },
    ).json()["assessment"]
    assert updated["feedback"]["value"] == 0.7 and updated["metadata"] == {"a": "1", "b": "2"}
    override = api.log(trace_id, payloads.feedback("relevance", 0.9, overrides=first)).json()["assessment"]
    assert override["overrides"] == first
    assert api.get(f"{V3}/traces/{trace_id}/assessments/{first}").json()["assessment"]["valid"] is False

    api.start(trace_id, experiment.pk)
    old, new = Assessment.objects.get(pk=first), Assessment.objects.get(pk=override["assessment_id"])
    assert (old.value, old.metadata, old.valid) == (0.7, {"a": "1", "b": "2"}, False)
    assert (new.value, new.overrides_id, new.valid) == (0.9, first, True)
    actions = [r.action for r in Revision.objects.filter(trace_id=trace_id).order_by("id")]
    assert actions == ["create", "update", "override"]


def test_deleting_pending_feedback(api, experiment):
    trace_id = new_trace_id()
    assessment_id = api.log(trace_id, payloads.feedback()).json()["assessment"]["assessment_id"]
    assert api.delete(f"{V3}/traces/{trace_id}/assessments/{assessment_id}").json() == {}
    assert not PendingAssessment.objects.exists()
    error(api.get(f"{V3}/traces/{trace_id}/assessments/{assessment_id}"), 404, "RESOURCE_DOES_NOT_EXIST")
    api.start(trace_id, experiment.pk)
    assert not Assessment.objects.exists()


def test_span_feedback_waits_for_its_span(api, experiment):
    trace_id = new_trace_id()
    root, child = payloads.mlflow_spans(trace_id, 2)
    api.start(trace_id, experiment.pk, num_spans=2)  # StartTraceV3 overtook the spans
    api.otlp(trace_id, [root], experiment.pk)
    response = api.log(trace_id, payloads.feedback("doc_relevance", 1.0, span_id=span_hex(2)))
    assert response.status_code == 200 and PendingAssessment.objects.exists()
    # the trace's own reads show it meanwhile (to the key that sent it)
    info = api.get(f"{V3}/traces/{trace_id}").json()["trace"]["trace_info"]
    assert [a["assessment_name"] for a in info["assessments"]] == ["doc_relevance"]
    api.otlp(trace_id, [child], experiment.pk)
    assert Assessment.objects.get().span_id == span_hex(2)
    # once the trace is complete, an unknown span is a plain 400
    message = error(api.log(trace_id, payloads.feedback(span_id=span_hex(9))), 400, "INVALID_PARAMETER_VALUE")
    assert f"Span {span_hex(9)} is not part of trace" in message


def test_pending_is_private_to_its_key(api, experiment):
    trace_id = new_trace_id()
    assessment_id = api.log(trace_id, payloads.feedback()).json()["assessment"]["assessment_id"]
    _, raw = make_api_key(experiment)
    other = MlflowApi(raw)
    error(other.get(f"{V3}/traces/{trace_id}/assessments/{assessment_id}"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert other.delete(f"{V3}/traces/{trace_id}/assessments/{assessment_id}").json() == {}
    assert PendingAssessment.objects.filter(pk=assessment_id).exists()


def test_trace_in_an_experiment_the_key_cannot_write_drops_the_item(api, caplog):
    trace_id = new_trace_id()
    api.log(trace_id, payloads.feedback())
    foreign = make_experiment("foreign")
    _, raw = make_api_key(foreign)
    caplog.set_level(logging.WARNING, logger="assessments.pending")
    MlflowApi(raw).start(trace_id, foreign.pk)
    assert not Assessment.objects.exists() and not PendingAssessment.objects.exists()
    assert "may not write to experiment" in caplog.text


def test_duplicate_pending_id_and_existing_invisible_trace(api, experiment):
    trace_id = new_trace_id()
    api.log(trace_id, payloads.feedback(assessment_id="a-mine-0001"))
    error(api.log(new_trace_id(), payloads.feedback(assessment_id="a-mine-0001")), 400, "RESOURCE_ALREADY_EXISTS")
    hidden = Trace.objects.create(
        trace_id=new_trace_id(), experiment=make_experiment("hidden"), request_time=timezone.now()
    )
    # An invisible trace answers exactly like a missing one (issue 12): held, and it never attaches.
    held = api.log(hidden.pk, payloads.feedback())
    assert held.status_code == 200 and held.json()["assessment"]["trace_id"] == hidden.pk
    assert not Assessment.objects.filter(trace_id=hidden.pk).exists()


def test_expiry_logs_each_item(api, settings, caplog, capsys):
    settings.FEEDBACKHUB_PENDING_FEEDBACK_SECONDS = 60
    trace_id = new_trace_id()
    api.log(trace_id, payloads.feedback())
    assert services.expire_held() == []  # not due yet
    caplog.set_level(logging.WARNING, logger="assessments.pending")
    PendingAssessment.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    call_command("expire_pending")
    assert not PendingAssessment.objects.exists()
    assert f"for trace {trace_id}: the trace never arrived within 60 s" in caplog.text
    assert "expired feedback" in capsys.readouterr().out
    error(api.get(f"{V3}/traces/{trace_id}/assessments/a-x"), 404, "RESOURCE_DOES_NOT_EXIST")


def test_expiry_attaches_items_whose_trace_did_arrive(api, experiment):
    """A trace stored in a race with the hold (no hook saw the row) is still attached."""
    trace_id = new_trace_id()
    api.log(trace_id, payloads.feedback())
    from traces import services as trace_services
    from traces.access import Actor

    hooks, trace_services.trace_stored_hooks[:] = list(trace_services.trace_stored_hooks), []
    try:
        trace_services.ingest_trace(
            experiment=experiment, actor=Actor.for_system("t"), channel="api", trace_id=trace_id, spans=make_spans(1)
        )
    finally:
        trace_services.trace_stored_hooks[:] = hooks
    assert PendingAssessment.objects.exists()
    services.expire_held(now=timezone.now() + timedelta(days=365))
    assert Assessment.objects.get().trace_id == trace_id


# --- the native API -------------------------------------------------------------------------------


@pytest.fixture
def native(api_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")
    return client


def test_native_feedback_before_its_trace(native, experiment):
    trace_id = new_trace_id()
    response = native.post(
        f"/api/v1/traces/{trace_id}/feedback",
        {
            "name": "user_satisfaction",
            "value": True,
            "source": {"source_type": "HUMAN", "source_id": "user_123"},
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    held = response.json()
    assert (held["trace_id"], held["value"], held["valid"]) == (trace_id, True, True)
    assert native.get(f"/api/v1/assessments/{held['assessment_id']}").json()["value"] is True
    response = native.post(f"/api/v1/traces/{trace_id}/expectations", {"name": "expected", "value": "x"}, format="json")
    assert response.status_code == 201
    response = native.post(
        "/api/v1/traces",
        {"experiment_id": str(experiment.pk), "trace_id": trace_id, "spans": make_spans(2)},
        format="json",
    )
    assert response.status_code == 201
    stored = {a.name: a for a in Assessment.objects.filter(trace_id=trace_id)}
    assert stored["user_satisfaction"].pk == held["assessment_id"] and stored["expected"].kind == "expectation"
    assert {r.channel for r in Revision.objects.filter(trace_id=trace_id)} == {"api"}


def test_native_bad_input_and_session_users_are_not_held(native, reviewer_client):
    trace_id = new_trace_id()
    response = native.post(f"/api/v1/traces/{trace_id}/feedback", {"name": "", "value": True}, format="json")
    assert response.status_code == 400
    assert native.post("/api/v1/traces/tr-bad/feedback", {"name": "x", "value": 1}, format="json").status_code == 404
    response = reviewer_client.post(
        f"/api/v1/traces/{trace_id}/feedback", {"name": "x", "value": 1}, content_type="application/json"
    )
    assert response.status_code == 404
    assert not PendingAssessment.objects.exists()


@pytest.mark.parametrize("surface", ["mlflow", "native"])
def test_trace_stored_between_the_lookup_and_the_pending_check_takes_the_feedback(
    api, api_client, experiment, monkeypatch, surface
):
    """The client exports spans in the background: the trace can land just after the feedback
    create looked for it. The create must then go to the stored trace, not answer 404."""
    from django.http import Http404

    from traces import selectors as trace_selectors

    trace_id = new_trace_id()
    original = trace_selectors.trace_for_write
    calls = []

    def trace_lands_after_the_first_look(actor, wanted):
        calls.append(wanted)
        if len(calls) == 1:
            api.start(trace_id, experiment.pk, num_spans=2)  # the exporter wins the race
            raise Http404(f"Trace {wanted} not found.")
        return original(actor, wanted)

    monkeypatch.setattr(trace_selectors, "trace_for_write", trace_lands_after_the_first_look)
    if surface == "mlflow":
        response = api.log(trace_id, payloads.feedback())
        assert response.status_code == 200, response.content
    else:
        response = api_client.post(
            f"/api/v1/traces/{trace_id}/feedback", {"name": "user_satisfaction", "value": True}, format="json"
        )
        assert response.status_code == 201, response.content
    assert Assessment.objects.get(trace_id=trace_id).value is True
    assert not PendingAssessment.objects.exists()
