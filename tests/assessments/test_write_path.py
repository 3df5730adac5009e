"""The lean single-feedback path: the API key cache (traces.authentication) and the one-statement
insert of an assessment with its revision (assessments.services, PostgreSQL outside a transaction)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from assessments import services
from assessments.definitions.cache import rules_for
from assessments.models import Assessment, PendingAssessment, Revision
from assessments.queues.rules import active_queues
from assessments.serializers import AssessmentOut
from traces import authentication
from traces import services as trace_services
from traces.access import Actor

from ..factories import make_api_key, make_experiment, make_trace

SYSTEM = Actor.for_system("tests")


def key_client(raw):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def feedback(client, trace, **extra):
    return client.post(
        f"/api/v1/traces/{trace.trace_id}/feedback",
        {"name": "user_satisfaction", "value": True},
        format="json",
        **extra,
    )


@pytest.mark.django_db
def test_cached_key_costs_no_query_and_revoke_takes_effect_at_once(experiment, trace):
    key, raw = make_api_key(experiment)
    client = key_client(raw)
    assert feedback(client, trace).status_code == 201
    with CaptureQueriesContext(connection) as captured:
        assert feedback(client, trace).status_code == 201
    assert not [q for q in captured.captured_queries if "traces_apikey" in q["sql"]]
    trace_services.revoke_api_key(api_key=key, actor=SYSTEM)
    assert feedback(client, trace).status_code == 401


@pytest.mark.django_db
def test_key_and_scope_are_one_query(experiment, trace):
    authentication.forget_api_keys()
    _, raw = make_api_key(experiment, make_experiment("second"))
    with CaptureQueriesContext(connection) as captured:
        actor = authentication.actor_for_key(raw)
    assert len(actor.key_experiment_ids) == 2
    assert len([q for q in captured.captured_queries if "traces_apikey" in q["sql"]]) == 2  # select + last_used_at


@pytest.mark.django_db
def test_new_experiment_of_a_cached_key_is_seen_at_once(experiment):
    key, raw = make_api_key(experiment)
    client = key_client(raw)
    assert client.get("/api/v1/experiments").status_code == 200  # now cached
    other = make_experiment("added-later")
    key.experiments.add(other)  # e.g. in another worker: this process's cache does not know
    trace = make_trace(other)
    assert feedback(client, trace).status_code == 201


@pytest.mark.django_db
def test_cache_can_be_turned_off(settings, experiment, trace):
    settings.FEEDBACKHUB_API_KEY_CACHE_SECONDS = 0
    key, raw = make_api_key(experiment)
    assert feedback(key_client(raw), trace).status_code == 201
    assert authentication.ApiKey.hash(raw) not in authentication._resolved


@pytest.mark.django_db
def test_unknown_key_is_401_and_not_cached():
    before = len(authentication._resolved)
    assert key_client("fh_not-a-key-at-all-0000000000").get("/api/v1/experiments").status_code == 401
    assert len(authentication._resolved) == before


postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement insert is PostgreSQL's")


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_one_statement_insert_writes_the_same_rows(experiment):
    trace = make_trace(experiment, spans=3)
    actor = Actor.for_system("tests")
    rules_for(experiment.pk)  # each worker reads an experiment's definitions once (their cache)
    active_queues(experiment.pk)  # and its review queues (a rule adds traces after writes)
    with CaptureQueriesContext(connection) as captured:
        created = services.log_feedback(
            trace=trace,
            name="relevance",
            value=0.5,
            actor=actor,
            channel="api",
            source_type="LLM_JUDGE",
            source_id="judge",
            span_id="0000000000000002",
            metadata={"k": "v"},
            rationale="why",
        )
    sqls = [q["sql"] for q in captured.captured_queries]
    assert len(sqls) == 2 and sqls[1].startswith("WITH created AS (INSERT")  # span check, then the write
    stored = Assessment.objects.get(pk=created.pk)
    assert (stored.value, stored.numeric_value, stored.span_id, stored.metadata, stored.rationale) == (
        0.5,
        0.5,
        "0000000000000002",
        {"k": "v"},
        "why",
    )
    assert stored.experiment_id == experiment.pk and stored.valid and stored.version == 1
    revision = Revision.objects.get()
    assert (revision.action, revision.channel, revision.assessment_id, revision.actor_label) == (
        "create",
        "api",
        created.pk,
        "system:tests",
    )
    assert revision.after == stored.snapshot() and revision.before is None


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_plain_api_create_is_one_statement_with_the_trace_lookup_and_writes_the_same_rows(experiment):
    trace = make_trace(experiment, spans=1)
    key, raw = make_api_key(experiment)
    client = key_client(raw)
    body = {
        "name": "relevance",
        "value": 0.5,
        "rationale": "why",
        "metadata": {"k": "v"},
        "source": {"source_id": "me"},
    }
    assert client.post(f"/api/v1/traces/{trace.trace_id}/feedback", body, format="json").status_code == 201
    with CaptureQueriesContext(connection) as captured:
        response = client.post(f"/api/v1/traces/{trace.trace_id}/feedback", body, format="json")
    assert response.status_code == 201 and response["ETag"] == '"1"'
    assert len(captured) == 1 and captured[0]["sql"].startswith("WITH trace AS")
    fast = Assessment.objects.get(pk=response.json()["assessment_id"])
    actor = authentication.actor_for_key(raw)
    usual = services.log_feedback(
        trace=trace,
        actor=actor,
        channel="api",
        name="relevance",
        value=0.5,
        rationale="why",
        metadata={"k": "v"},
        source_type="HUMAN",
        source_id="me",
    )
    usual = Assessment.objects.get(pk=usual.pk)
    skip = {"assessment_id", "create_time", "last_update_time"}
    fields = [f.attname for f in Assessment._meta.concrete_fields if f.attname not in skip]
    assert [getattr(fast, f) for f in fields] == [getattr(usual, f) for f in fields]
    assert fast.experiment_id == experiment.pk and fast.created_by_key_id == key.pk
    assert response.json() == {**AssessmentOut(fast).data, "overridden_by": None}
    revisions = {r.assessment_id: r for r in Revision.objects.filter(assessment_id__in=[fast.pk, usual.pk])}
    first, second = revisions[fast.pk], revisions[usual.pk]
    columns = ["action", "channel", "trace_id", "experiment_id", "actor_key_id", "actor_label", "before"]
    assert [getattr(first, c) for c in columns] == [getattr(second, c) for c in columns]
    assert first.after == fast.snapshot()


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_plain_api_create_falls_back_to_the_usual_answers(experiment, other_experiment):
    key, raw = make_api_key(experiment)
    client = key_client(raw)
    other = make_trace(other_experiment)
    body = {"name": "n", "value": True}
    # Another experiment's trace answers like one not yet arrived (issue 12): held, never attached.
    assert client.post(f"/api/v1/traces/{other.trace_id}/feedback", body, format="json").status_code == 201
    assert not Assessment.objects.filter(trace=other).exists()
    unseen = "tr-" + "0" * 32
    response = client.post(f"/api/v1/traces/{unseen}/feedback", body, format="json")
    assert response.status_code == 201 and PendingAssessment.objects.filter(trace_id=unseen).exists()
    trace = make_trace(experiment)
    url = f"/api/v1/traces/{trace.trace_id}/feedback"
    assert client.post(url, {"name": "n"}, format="json").status_code == 400  # feedback needs a value
    assert client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 201
    replay = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert replay.status_code == 200 and replay["Idempotent-Replayed"] == "true"
    assert Assessment.objects.filter(trace=trace).count() == 1


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_one_statement_insert_replays_and_refuses_like_the_transactional_path(experiment):
    trace = make_trace(experiment, spans=1)
    first = services.log_feedback(trace=trace, name="a", value=True, actor=SYSTEM, channel="api", idempotency_key="k")
    again = services.log_feedback(trace=trace, name="a", value=True, actor=SYSTEM, channel="api", idempotency_key="k")
    assert again.pk == first.pk and again.replayed and not first.replayed
    with pytest.raises(services.Conflict):
        services.log_feedback(trace=trace, name="b", value=True, actor=SYSTEM, channel="api", idempotency_key="k")
    services.log_feedback(trace=trace, name="a", value=True, actor=SYSTEM, channel="api", assessment_id="a-mine")
    with pytest.raises(services.Conflict):
        services.log_feedback(trace=trace, name="a", value=True, actor=SYSTEM, channel="api", assessment_id="a-mine")
    assert Assessment.objects.count() == 2 and Revision.objects.count() == 2


@pytest.mark.django_db
def test_assessment_out_agrees_with_drfs_field_walk(trace):
    from rest_framework import serializers as drf

    from assessments.serializers import AssessmentOut

    from ..factories import make_feedback

    items = [
        make_feedback(trace, value=True),
        make_feedback(trace, name="r", value=0.25, source_type="LLM_JUDGE", source_id="j", span_id="0000000000000002"),
        make_feedback(trace, name="e", value=None, error={"error_code": "X", "error_message": "m"}),
        make_feedback(trace, name="l", value=["a", {"b": 1}], metadata={"k": "v"}, rationale="why"),
    ]
    items.append(services.override_feedback(assessment=items[1], actor=SYSTEM, channel="api", value=0.5))
    for assessment in [*items, Assessment.objects.get(pk=items[1].pk)]:
        fast = AssessmentOut(assessment).data
        walked = drf.ModelSerializer.to_representation(AssessmentOut(), assessment)
        assert dict(fast) == dict(walked)
    assert [row["name"] for row in AssessmentOut(items, many=True).data] == ["user_satisfaction", "r", "e", "l", "r"]


@pytest.mark.django_db
def test_trace_and_span_representations_agree_with_drfs_field_walk(trace):
    from rest_framework import serializers as drf

    from assessments.selectors import assessments_for_trace
    from assessments.serializers import TraceDetailOut
    from traces.selectors import trace_for_detail
    from traces.serializers import SpanOut, TraceOut

    from ..factories import make_feedback

    make_feedback(trace, value=0.5, span_id="0000000000000002")
    detail = trace_for_detail(SYSTEM, trace.trace_id)
    assessments = assessments_for_trace(detail)
    walked = drf.ModelSerializer.to_representation(TraceDetailOut(context={"assessments": assessments}), detail)
    fast = TraceDetailOut(detail, context={"assessments": assessments}).data
    assert dict(fast) == {
        **walked,
        "spans": [dict(s) for s in walked["spans"]],
        "assessments": [dict(a) for a in walked["assessments"]],
    }
    assert dict(TraceOut(detail).data) == dict(drf.ModelSerializer.to_representation(TraceOut(), detail))
    for span in detail.spans.all():
        assert SpanOut(span).data == dict(drf.ModelSerializer.to_representation(SpanOut(), span))


@postgres_only
@pytest.mark.django_db
def test_batch_copy_rows_equal_djangos_insert_values(trace):
    import json

    from assessments.services.revisions import revision as _revision
    from feedbackhub.bulk import copy_values as _copy_values
    from feedbackhub.bulk import insert_values as _insert_values

    assessment = services.log_feedback(
        trace=trace,
        name="x",
        value={"a": [1, 2.5e20]},  # the value field's encoder writes large floats its own way
        actor=SYSTEM,
        channel="api",
        error=None,
        metadata={"k": "v"},
        span_id="0000000000000002",
    )
    revision = _revision(Revision.Action.CREATE, assessment, SYSTEM, "api", None, assessment.snapshot())

    def as_sent(values):
        # jsonb parameters as the text psycopg sends them
        return [(value.dumps or json.dumps)(value.obj) if hasattr(value, "obj") else value for value in values]

    for obj in (assessment, revision):
        [fast] = list(_copy_values(type(obj), [obj]))
        assert as_sent(fast) == as_sent(_insert_values(obj))
    [from_dict] = list(
        _copy_values(
            Revision, [{field.attname: getattr(revision, field.attname) for field in Revision._meta.concrete_fields}]
        )
    )
    assert as_sent(from_dict) == as_sent(_insert_values(revision))


SIMPLE_BODIES = [
    {"name": "user_satisfaction", "value": True},
    {"name": "  padded  ", "value": 0.5, "rationale": "  kept as sent ", "metadata": {"k": "v"}},
    {"name": "n", "value": 3, "source": {"source_type": "LLM_JUDGE", "source_id": " judge "}},
    {"name": "n", "value": "text ✓ with unicode", "source": {}, "span_id": "0123456789abcdef", "extra": 1},
    {"name": "n", "value": None},
    {"name": "n"},
    {"name": "n", "value": [1, "x"]},
    {"name": "n", "value": {"a": "b\x00"}},
    {"name": "n", "value": "nul\x00"},
    {"name": "n", "value": True, "error": {"error_code": "E"}},
    {"name": "n", "error": {"error_code": "E"}},
    {"name": "n", "value": True, "error": None},
    {"name": "", "value": True},
    {"name": "   ", "value": True},
    {"name": "x" * 251, "value": True},
    {"name": " " + "x" * 250 + " ", "value": True},
    {"name": 5, "value": True},
    {"name": "é", "value": True},
    {"name": "n\x00", "value": True},
    {"name": "n", "value": True, "rationale": None},
    {"name": "n", "value": True, "rationale": "ünïcode"},
    {"name": "n", "value": True, "span_id": "0123456789abcdef\n"},
    {"name": "n", "value": True, "span_id": "0123456789ABCDEF"},
    {"name": "n", "value": True, "span_id": None},
    {"name": "n", "value": True, "metadata": None},
    {"name": "n", "value": True, "metadata": {"k": 1}},
    {"name": "n", "value": True, "source": None},
    {"name": "n", "value": True, "source": {"source_type": "ROBOT"}},
    {"name": "n", "value": True, "source": {"source_type": ["HUMAN"]}},
    {"name": "n", "value": True, "source": {"source_id": "x" * 251}},
    {"name": "n", "value": True, "source": {"source_id": None}},
    ["not", "an", "object"],
]


@pytest.mark.parametrize("body", SIMPLE_BODIES)
@pytest.mark.parametrize("kind", ["feedback", "expectation"])
def test_simple_create_input_agrees_with_the_serializer(body, kind):
    """The hand-written parse of plain bodies gives the serializer's validated data, or defers to it."""
    from assessments.serializers import ExpectationInput, FeedbackInput, simple_create_input

    serializer = (FeedbackInput if kind == "feedback" else ExpectationInput)(data=body)
    fast = simple_create_input(body, kind)
    if SIMPLE_BODIES.index(body) < 4:
        assert fast is not None  # the plain bodies take the fast path
    if fast is not None:
        assert serializer.is_valid(), serializer.errors
        assert fast == serializer.validated_data


@pytest.mark.django_db
def test_a_missing_trace_answers_404_before_an_unreadable_body(experiment, trace):
    _, raw = make_api_key(experiment)
    client = key_client(raw)
    broken = "{not json"
    missing = client.post("/api/v1/traces/tr-x/feedback", broken, content_type="application/json")
    assert missing.status_code == 404
    unreadable = client.post(f"/api/v1/traces/{trace.trace_id}/feedback", broken, content_type="application/json")
    assert unreadable.status_code == 400 and "JSON parse error" in unreadable.json()["detail"]


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_mlflow_protocol_plain_create_is_one_statement(experiment):
    trace = make_trace(experiment, spans=1)
    _, raw = make_api_key(experiment)
    client = key_client(raw)
    body = {
        "assessment": {
            "assessment_name": "user_satisfaction",
            "trace_id": trace.trace_id,
            "source": {"source_type": "HUMAN", "source_id": "user_123"},
            "create_time": "2026-01-02T03:04:05.000Z",
            "feedback": {"value": True},
            "rationale": "ok",
        }
    }
    url = f"/api/3.0/mlflow/traces/{trace.trace_id}/assessments"
    assert client.post(url, body, format="json").status_code == 200
    with CaptureQueriesContext(connection) as captured:
        response = client.post(url, body, format="json")
    assert response.status_code == 200 and len(captured) == 1
    stored = Assessment.objects.get(pk=response.json()["assessment"]["assessment_id"])
    assert (stored.value, stored.source_id, stored.rationale, stored.experiment_id) == (
        True,
        "user_123",
        "ok",
        experiment.pk,
    )
    assert stored.create_time.isoformat() == "2026-01-02T03:04:05+00:00"
    assert Revision.objects.filter(assessment_id=stored.pk, action="create", channel="mlflow").count() == 1
