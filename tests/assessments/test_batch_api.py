"""POST /api/v1/feedback:batch and services.log_feedback_batch: all or nothing, per-item errors,
idempotent retries, one revision per item, a query count that does not grow with the batch."""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from assessments import services
from assessments.models import Assessment, Revision
from traces.access import Actor
from traces.models import Membership

from ..factories import make_api_key, make_experiment, make_trace

pytestmark = pytest.mark.django_db

URL = "/api/v1/feedback:batch"


def item(trace, **overrides):
    return {
        "trace_id": trace.trace_id,
        "name": "user_satisfaction",
        "value": True,
        **overrides,
    }


@pytest.fixture
def second_trace(experiment):
    return make_trace(experiment, spans=2)


def test_batch_creates_every_item_with_one_create_revision_each(api_client, api_key, trace, second_trace):
    items = [
        item(trace, value=True, source={"source_type": "HUMAN", "source_id": "u1"}),
        item(
            trace,
            name="relevance",
            value=0.75,
            source={"source_type": "LLM_JUDGE", "source_id": "gpt"},
            rationale="on topic",
            span_id="0000000000000002",
            metadata={"run": "7"},
        ),
        item(second_trace, name="label", value=["a", "b"]),
        item(
            second_trace,
            name="judge",
            value=None,
            error={"error_code": "Timeout", "error_message": "slow"},
        ),
    ]
    response = api_client.post(URL, {"items": items}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["created"], body["replayed"]) == (4, 0)
    ids = [row["assessment_id"] for row in body["assessments"]]
    assert [row["trace_id"] for row in body["assessments"]] == [
        trace.pk,
        trace.pk,
        second_trace.pk,
        second_trace.pk,
    ]
    stored = {a.pk: a for a in Assessment.objects.all()}
    assert set(stored) == set(ids)
    relevance = stored[ids[1]]
    assert (
        relevance.value,
        relevance.numeric_value,
        relevance.span_id,
        relevance.source_type,
    ) == (
        0.75,
        0.75,
        "0000000000000002",
        "LLM_JUDGE",
    )
    assert relevance.experiment_id == trace.experiment_id and relevance.created_by_key_id == api_key[0].pk
    assert stored[ids[0]].numeric_value == 1.0 and stored[ids[2]].numeric_value is None
    assert stored[ids[3]].error == {"error_code": "Timeout", "error_message": "slow"}
    # a missing source id defaults to the key's label, as on the single path
    assert stored[ids[2]].source_id == "key:test key"
    revisions = list(Revision.objects.order_by("id"))
    assert [r.assessment_id for r in revisions] == ids
    assert {(r.action, r.channel, r.actor_key_id, r.actor_label) for r in revisions} == {
        ("create", "api", api_key[0].pk, "key:test key")
    }
    assert revisions[1].before is None and revisions[1].after["value"] == 0.75


def test_one_bad_item_writes_nothing_and_names_index_and_field(api_client, trace):
    items = [
        item(trace),
        item(trace, name=""),
        item(trace, value=None),
        item(trace, metadata={"k": 1}),
    ]
    response = api_client.post(URL, {"items": items}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == "3 of 4 items are invalid; nothing was written."
    assert set(body["items"]) == {"1", "2", "3"}
    assert "name" in body["items"]["1"] and "value" in body["items"]["2"] and "metadata" in body["items"]["3"]
    assert not Assessment.objects.exists() and not Revision.objects.exists()


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"source": {"source_type": "ROBOT"}}, "source.source_type"),
        ({"source": "HUMAN"}, "source"),
        ({"span_id": "nothex"}, "span_id"),
        ({"value": float("inf")}, "value"),
        ({"error": {"error_message": "no code"}, "value": None}, "error"),
        ({"colour": "red"}, "colour"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"rationale": 5}, "rationale"),
    ],
)
def test_item_rules_are_those_of_log_feedback(trace, overrides, field):
    with pytest.raises(services.BatchValidationError) as info:
        services.log_feedback_batch(
            items=[item(trace), item(trace, **overrides)],
            actor=Actor.for_system("t"),
            channel="api",
        )
    assert list(info.value.item_errors) == [1]
    assert field in info.value.item_errors[1]
    assert isinstance(info.value, ValidationError) and 1 in info.value.message_dict
    assert not Assessment.objects.exists()


def test_unknown_and_invisible_traces_and_foreign_spans_are_item_errors(api_client, trace):
    hidden = make_trace(make_experiment("hidden"))
    items = [
        item(trace),
        {**item(trace), "trace_id": "tr-" + "0" * 32},
        item(hidden),
        item(trace, span_id="00000000000000ff"),
        "not an object",
    ]
    response = api_client.post(URL, {"items": items}, format="json")
    assert response.status_code == 400
    errors = response.json()["items"]
    assert errors["1"] == {"trace_id": [f"Trace tr-{'0' * 32} not found."]}
    assert errors["2"] == {"trace_id": [f"Trace {hidden.pk} not found."]}
    assert "span_id" in errors["3"] and "item" in errors["4"]
    assert not Assessment.objects.exists()


def test_retried_batch_never_duplicates(api_client, trace, second_trace):
    items = [
        item(trace, idempotency_key="k1"),
        item(second_trace, idempotency_key="k2"),
        item(trace, name="x"),
    ]
    first = api_client.post(URL, {"items": items[:2]}, format="json")
    assert first.status_code == 201
    again = api_client.post(URL, {"items": items}, format="json")
    assert again.status_code == 201
    body = again.json()
    assert (body["created"], body["replayed"]) == (1, 2)
    assert [row["replayed"] for row in body["assessments"]] == [True, True, False]
    assert [row["assessment_id"] for row in body["assessments"][:2]] == [
        row["assessment_id"] for row in first.json()["assessments"]
    ]
    assert Assessment.objects.count() == 3 and Revision.objects.count() == 3
    replay_only = api_client.post(URL, {"items": items[:2]}, format="json")
    assert replay_only.status_code == 200 and replay_only.json()["created"] == 0


def test_idempotency_key_of_single_path_is_honoured_and_reuse_for_other_item_refused(api_client, trace):
    single = api_client.post(
        f"/api/v1/traces/{trace.pk}/feedback",
        {"name": "user_satisfaction", "value": True},
        format="json",
        HTTP_IDEMPOTENCY_KEY="shared",
    )
    assert single.status_code == 201
    replay = api_client.post(URL, {"items": [item(trace, idempotency_key="shared")]}, format="json")
    assert (
        replay.status_code == 200 and replay.json()["assessments"][0]["assessment_id"] == single.json()["assessment_id"]
    )
    clash = api_client.post(
        URL,
        {"items": [item(trace), item(trace, name="other", idempotency_key="shared")]},
        format="json",
    )
    assert clash.status_code == 400
    assert clash.json()["items"] == {"1": {"idempotency_key": ["was already used for a different assessment"]}}
    twice = api_client.post(
        URL,
        {"items": [item(trace, idempotency_key="n"), item(trace, idempotency_key="n")]},
        format="json",
    )
    assert twice.status_code == 400 and "idempotency_key" in twice.json()["items"]["1"]
    assert Assessment.objects.count() == 1


@pytest.mark.parametrize(
    "body, message",
    [
        ({}, '"items" list'),
        ({"items": []}, "items: must be a non-empty"),
        ({"items": "x"}, "non-empty"),
        ([1], '"items" list'),
    ],
)
def test_bad_envelope_is_a_400_naming_items(api_client, body, message):
    response = api_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_more_than_1000_items_is_refused(api_client, trace):
    response = api_client.post(URL, {"items": [item(trace)] * 1001}, format="json")
    assert response.status_code == 400
    assert "limit is 1000" in response.json()["detail"]
    assert not Assessment.objects.exists()


def test_anonymous_is_401_and_viewer_is_403(trace, viewer, reviewer):
    assert APIClient().post(URL, {"items": [item(trace)]}, format="json").status_code in (401, 403)
    client = APIClient()
    client.force_login(viewer)
    assert client.post(URL, {"items": [item(trace)]}, format="json").status_code == 403
    client.force_login(reviewer)
    assert client.post(URL, {"items": [item(trace)]}, format="json").status_code == 201
    assert Revision.objects.get().actor_user == reviewer


def test_wrong_method_is_405(api_client):
    assert api_client.get(URL).status_code == 405


def test_query_count_does_not_grow_with_batch_size(api_client, experiment):
    traces = [make_trace(experiment, spans=2) for _ in range(5)]

    calls = iter(range(100))

    def queries(count):
        call = next(calls)
        items = [item(traces[n % 5], span_id="0000000000000002", idempotency_key=f"{call}-{n}") for n in range(count)]
        with CaptureQueriesContext(connection) as captured:
            response = api_client.post(URL, {"items": items}, format="json")
        assert response.status_code == 201
        return len(captured)

    queries(1)  # the key's first use also stamps last_used_at
    # the traces, the span ids, the idempotency keys, then in one transaction (savepoint in
    # tests) the assessments and the revisions: the same for 1 item and for 50
    # (40 items: SQLite splits bulk inserts at 999 parameters; PostgreSQL sends one statement)
    assert queries(1) == queries(40) <= 8
    assert Assessment.objects.count() == 42 and Revision.objects.count() == 42


def test_batch_for_several_experiments_checks_each(experiment, trace):
    other = make_experiment("second")
    other_trace = make_trace(other)
    key, raw = make_api_key(experiment, other)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = client.post(URL, {"items": [item(trace), item(other_trace)]}, format="json")
    assert response.status_code == 201
    assert set(Assessment.objects.values_list("experiment_id", flat=True)) == {
        experiment.pk,
        other.pk,
    }


def test_reviewer_membership_in_only_one_experiment(django_user_model, experiment, trace):
    other_trace = make_trace(make_experiment("second"))
    user = django_user_model.objects.create_user(username="rita", password="pw")
    Membership.objects.create(user=user, experiment=experiment, role=Membership.Role.REVIEWER)
    with pytest.raises(services.BatchValidationError) as info:
        services.log_feedback_batch(
            items=[item(trace), item(other_trace)],
            actor=Actor.for_user(user),
            channel="ui",
        )
    assert list(info.value.item_errors) == [1]


def test_large_floats_stay_floats(api_client, trace):
    response = api_client.post(URL, {"items": [item(trace, name="score", value=2.5e20)]}, format="json")
    assert response.status_code == 201
    stored = Assessment.objects.get(name="score")
    assert stored.value == 2.5e20 and isinstance(stored.value, float)
