"""Trace deletion: the service (what goes, the audit row, who may), the native API
(`DELETE /api/v1/traces/{id}`), MLflow's DeleteTraces over HTTP, the owner's confirm page and the admin."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from assessments import selectors, services
from assessments.models import Assessment, PendingAssessment, Revision
from assessments.trace_deletion import delete_traces
from tests.factories import make_api_key, make_feedback, make_trace
from tests.mlflow.rawapi import MlflowApi, error
from traces.access import Actor
from traces.models import Run, RunTrace, Span, Trace, TraceDeletion

SYSTEM = Actor.for_system("tests")
DELETE_TRACES = "/api/2.0/mlflow/traces/delete-traces"


def ms(value) -> int:
    return int(value.timestamp() * 1000)


@pytest.fixture
def rated(experiment, reviewer):
    """A trace with spans, feedback (one overridden) and an expectation, plus an unrelated trace."""
    trace = make_trace(experiment, spans=3)
    first = make_feedback(trace, name="relevance", value=0.4, source_type="LLM_JUDGE", source_id="judge")
    services.override_feedback(
        assessment=first, actor=Actor.for_user(reviewer), channel="ui", value=0.9, rationale="better"
    )
    make_feedback(trace, name="user_satisfaction", value=True)
    return trace


def test_deleting_a_trace_removes_everything_attached_and_writes_one_audit_row(experiment, rated, owner):
    keep = make_trace(experiment, spans=2)
    make_feedback(keep, value=False)
    run = Run.objects.create(experiment=experiment, name="eval")
    RunTrace.objects.create(run=run, trace=rated)
    PendingAssessment.objects.create(
        trace_id=rated.trace_id,
        kind="feedback",
        payload={},
        channel="api",
        created_at=timezone.now(),
        expires_at=timezone.now() + timedelta(hours=1),
    )
    revisions = Revision.objects.filter(trace_id=rated.trace_id).count()
    assert revisions == 3  # create, override, create

    deletion = delete_traces(
        experiment=experiment, actor=Actor.for_user(owner), channel="ui", trace_ids=[rated.trace_id]
    )

    assert not Trace.objects.filter(pk=rated.pk).exists()
    assert not Span.objects.filter(trace_id=rated.pk).exists()
    assert not Assessment.objects.filter(trace_id=rated.pk).exists()
    assert not Revision.objects.filter(trace_id=rated.pk).exists()
    assert not PendingAssessment.objects.filter(trace_id=rated.pk).exists()
    assert not RunTrace.objects.exists() and Run.objects.filter(pk=run.pk).exists()
    assert deletion.trace_ids == [rated.trace_id] and deletion.trace_count == 1
    assert deletion.removed == {"spans": 3, "assessments": 3, "revisions": revisions, "held": 1, "queue_items": 0}
    assert (deletion.channel, deletion.actor_user, deletion.actor_label) == ("ui", owner, "olivia")
    assert deletion.criteria == {"trace_ids": [rated.trace_id]}
    # the other trace is untouched, and the feedback summary (rollup on PostgreSQL) follows the rows
    assert Trace.objects.filter(pk=keep.pk).exists() and Assessment.objects.filter(trace=keep).count() == 1
    stats = selectors.feedback_stats_by_experiment([experiment])[experiment.pk]
    assert stats["feedback_count"] == 1


def test_unknown_and_foreign_ids_are_skipped_and_nothing_deleted_writes_no_audit(experiment, other_experiment):
    foreign = make_trace(other_experiment)
    assert delete_traces(experiment=experiment, actor=SYSTEM, channel="api", trace_ids=[foreign.trace_id, "x"]) is None
    assert Trace.objects.filter(pk=foreign.pk).exists() and not TraceDeletion.objects.exists()


def test_delete_by_time_takes_the_oldest_first(experiment):
    now = timezone.now()
    traces = [make_trace(experiment, request_time=now - timedelta(minutes=10 - n)) for n in range(4)]
    deletion = delete_traces(
        experiment=experiment,
        actor=SYSTEM,
        channel="mlflow",
        max_timestamp_millis=ms(traces[2].request_time),
        max_traces=2,
    )
    assert deletion.trace_ids == [traces[0].trace_id, traces[1].trace_id]
    assert deletion.criteria == {"max_timestamp_millis": ms(traces[2].request_time), "max_traces": 2}
    again = delete_traces(experiment=experiment, actor=SYSTEM, channel="mlflow", max_timestamp_millis=ms(now))
    assert again.trace_ids == [traces[2].trace_id, traces[3].trace_id]


def test_only_owners_and_keys_may_delete(experiment, rated, reviewer, viewer, outsider, staff):
    for user in (reviewer, viewer, outsider):
        with pytest.raises(PermissionDenied):
            delete_traces(experiment=experiment, actor=Actor.for_user(user), channel="ui", trace_ids=[rated.trace_id])
    assert Trace.objects.filter(pk=rated.pk).exists()
    key = make_api_key(experiment)[0]
    assert delete_traces(experiment=experiment, actor=Actor.for_key(key), channel="api", trace_ids=[rated.trace_id])


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({}, "Either `max_timestamp_millis` or `trace_ids` must be specified."),
        ({"trace_ids": ["tr-1"], "max_timestamp_millis": 1}, "Only one of `max_timestamp_millis` and `trace_ids`"),
        ({"trace_ids": "tr-1"}, "list of strings"),
        ({"trace_ids": ["tr-1"], "max_traces": 1}, "max_traces applies to a delete by max_timestamp_millis"),
        ({"max_timestamp_millis": 1, "max_traces": 0}, "at least 1"),
        ({"max_timestamp_millis": 10**20}, "out of range"),
        ({"trace_ids": ["tr-1"] * 10_001}, "at most 10000 per call"),
    ],
)
def test_bad_criteria_are_validation_errors(experiment, kwargs, needle):
    with pytest.raises(ValidationError) as raised:
        delete_traces(experiment=experiment, actor=SYSTEM, channel="api", **kwargs)
    assert needle in str(raised.value)


# --- native API ---------------------------------------------------------------------------------


def test_api_delete_is_204_then_404(api_client, rated):
    response = api_client.delete(f"/api/v1/traces/{rated.trace_id}")
    assert response.status_code == 204 and not response.content
    assert not Trace.objects.filter(pk=rated.pk).exists()
    assert TraceDeletion.objects.get().channel == "api"
    assert api_client.delete(f"/api/v1/traces/{rated.trace_id}").status_code == 404
    assert api_client.get(f"/api/v1/traces/{rated.trace_id}").status_code == 404


def test_api_delete_of_another_experiments_trace_is_404(api_client, other_experiment):
    foreign = make_trace(other_experiment)
    assert api_client.delete(f"/api/v1/traces/{foreign.trace_id}").status_code == 404
    assert api_client.delete("/api/v1/traces/tr-" + "0" * 32).status_code == 404
    assert Trace.objects.filter(pk=foreign.pk).exists()


def test_api_delete_needs_the_owner_role(client, rated, reviewer, owner):
    client.force_login(reviewer)
    assert client.delete(f"/api/v1/traces/{rated.trace_id}").status_code == 403
    client.force_login(owner)
    assert client.delete(f"/api/v1/traces/{rated.trace_id}").status_code == 204
    assert client.delete(f"/api/v1/traces/{rated.trace_id}").status_code == 404


# --- MLflow DeleteTraces over HTTP --------------------------------------------------------------


def test_mlflow_delete_traces_by_ids_and_by_time(api_key, experiment, other_experiment):
    api = MlflowApi(api_key[1])
    traces = [make_trace(experiment, request_time=timezone.now() - timedelta(minutes=5 - n)) for n in range(4)]
    foreign = make_trace(other_experiment)
    body = {"experiment_id": str(experiment.pk), "request_ids": [traces[0].trace_id, foreign.trace_id, "tr-x"]}
    response = api.post(DELETE_TRACES, body)
    assert response.status_code == 200 and response.json() == {"traces_deleted": 1}
    assert api.post(DELETE_TRACES, body).json() == {"traces_deleted": 0}
    body = {"experiment_id": str(experiment.pk), "max_timestamp_millis": ms(traces[2].request_time), "max_traces": 5}
    assert api.post(DELETE_TRACES, body).json() == {"traces_deleted": 2}
    assert list(Trace.objects.filter(experiment=experiment)) == [traces[3]]
    assert Trace.objects.filter(pk=foreign.pk).exists()
    assert [(d.channel, d.trace_count) for d in TraceDeletion.objects.order_by("id")] == [("mlflow", 1), ("mlflow", 2)]


@pytest.mark.parametrize(
    ("body", "status", "code", "needle"),
    [
        ({}, 400, "INVALID_PARAMETER_VALUE", "experiment_id"),
        ({"experiment_id": "{exp}"}, 400, "INVALID_PARAMETER_VALUE", "Either `max_timestamp_millis` or `trace_ids`"),
        (
            {"experiment_id": "{exp}", "request_ids": ["tr-1"], "max_timestamp_millis": 1},
            400,
            "INVALID_PARAMETER_VALUE",
            "Only one of",
        ),
        ({"experiment_id": "{exp}", "request_ids": "tr-1"}, 400, "INVALID_PARAMETER_VALUE", "must be a list"),
        (
            {"experiment_id": "{exp}", "max_timestamp_millis": "soon"},
            400,
            "INVALID_PARAMETER_VALUE",
            "max_timestamp_millis",
        ),
        ({"experiment_id": "999999", "max_timestamp_millis": 1}, 404, "RESOURCE_DOES_NOT_EXIST", "999999"),
    ],
)
def test_mlflow_delete_traces_errors(api_key, experiment, body, status, code, needle):
    body = {
        key: value.replace("{exp}", str(experiment.pk)) if isinstance(value, str) else value
        for key, value in body.items()
    }
    assert needle in error(MlflowApi(api_key[1]).post(DELETE_TRACES, body), status, code)


def test_mlflow_delete_traces_refuses_a_key_of_another_experiment(experiment, other_experiment, rated):
    api = MlflowApi(make_api_key(other_experiment)[1])
    response = api.post(DELETE_TRACES, {"experiment_id": str(experiment.pk), "request_ids": [rated.trace_id]})
    error(response, 404, "RESOURCE_DOES_NOT_EXIST")
    assert Trace.objects.filter(pk=rated.pk).exists()


# --- the owner's confirm page and the admin -----------------------------------------------------


def test_owner_confirms_then_deletes_in_the_ui(client, rated, owner, experiment):
    client.force_login(owner)
    page = client.get(f"/traces/{rated.trace_id}/")
    assert f'href="/traces/{rated.trace_id}/delete/"' in page.content.decode()
    confirm = client.get(f"/traces/{rated.trace_id}/delete/")
    assert confirm.status_code == 200
    text = confirm.content.decode()
    assert "Delete this trace?" in text and "3 spans" in text and "3 assessments" in text
    # a POST without the confirmation only shows the question again
    assert client.post(f"/traces/{rated.trace_id}/delete/").status_code == 200
    assert Trace.objects.filter(pk=rated.pk).exists()
    response = client.post(f"/traces/{rated.trace_id}/delete/", {"confirmed": "yes"})
    assert response.status_code == 302 and response["Location"] == f"/experiments/{experiment.pk}/traces/"
    assert not Trace.objects.filter(pk=rated.pk).exists()
    assert TraceDeletion.objects.get().actor_user == owner


def test_reviewers_see_no_delete_and_cannot_delete(client, rated, reviewer, outsider):
    client.force_login(reviewer)
    assert f"/traces/{rated.trace_id}/delete/" not in client.get(f"/traces/{rated.trace_id}/").content.decode()
    assert client.get(f"/traces/{rated.trace_id}/delete/").status_code == 403
    assert client.post(f"/traces/{rated.trace_id}/delete/", {"confirmed": "yes"}).status_code == 403
    client.force_login(outsider)
    assert client.post(f"/traces/{rated.trace_id}/delete/", {"confirmed": "yes"}).status_code == 404
    client.logout()
    assert client.post(f"/traces/{rated.trace_id}/delete/", {"confirmed": "yes"}).status_code == 302  # to login
    assert Trace.objects.filter(pk=rated.pk).exists()


def test_admin_deletes_through_the_service_and_shows_the_audit(client, staff, rated, experiment):
    other = make_trace(experiment)
    client.force_login(staff)
    response = client.post(
        "/admin/traces/trace/",
        {"action": "delete_selected", "_selected_action": [rated.pk, other.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Trace.objects.filter(pk__in=[rated.pk, other.pk]).exists()
    assert not Revision.objects.filter(trace_id=rated.pk).exists()
    deletion = TraceDeletion.objects.get()
    assert deletion.channel == "admin" and sorted(deletion.trace_ids) == sorted([rated.pk, other.pk])
    listing = client.get("/admin/traces/tracedeletion/")
    assert listing.status_code == 200 and "charlie" in listing.content.decode()
    assert client.get(f"/admin/traces/tracedeletion/{deletion.pk}/change/").status_code == 200
    assert client.post(f"/admin/traces/tracedeletion/{deletion.pk}/delete/", {"post": "yes"}).status_code == 403
