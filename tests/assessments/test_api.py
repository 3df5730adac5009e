"""The assessment endpoints of the native API (and the trace detail that carries them), through
HTTP with real API keys: success, bad input, concurrency headers and the revisions they write."""

import pytest
from rest_framework.test import APIClient

from assessments import services
from assessments.models import Assessment, Revision

from ..factories import SYSTEM, make_api_key, make_expectation, make_feedback, make_spans, make_trace, span_id

pytestmark = pytest.mark.django_db

MISSING_TRACE = "tr-" + "0" * 32
MISSING_ASSESSMENT = "a-" + "0" * 32


def feedback_url(trace):
    return f"/api/v1/traces/{trace.trace_id}/feedback"


def post_feedback(client, trace, **body):
    return client.post(feedback_url(trace), {"name": "user_satisfaction", "value": True, **body}, format="json")


# --- trace detail --------------------------------------------------------------------------------


def test_trace_detail_has_spans_in_start_order_and_all_assessments(api_client, trace):
    first = make_feedback(trace, value=0.2, source_type="LLM_JUDGE", source_id="judge")
    make_expectation(trace)
    services.override_feedback(assessment=first, actor=SYSTEM, channel="api", value=0.9)
    response = api_client.get(f"/api/v1/traces/{trace.trace_id}")
    assert response.status_code == 200
    body = response.json()
    assert [s["span_id"] for s in body["spans"]] == [span_id(0), span_id(1), span_id(2)]
    assert body["tags"] == {"env": "test"} and body["metadata"] == {} and body["span_count"] == 3
    names = [(a["name"], a["kind"], a["valid"]) for a in body["assessments"]]
    assert names == [
        ("user_satisfaction", "feedback", False),
        ("expected_answer", "expectation", True),
        ("user_satisfaction", "feedback", True),
    ]
    assert body["assessments"][0]["overridden_by"] == body["assessments"][2]["assessment_id"]
    assert body["assessments"][2]["overrides"] == body["assessments"][0]["assessment_id"]


def trace_with(experiment, count):
    trace = make_trace(experiment, spans=count)
    for n in range(count):
        make_feedback(trace, name=f"f{n}", value=n, span_id=span_id(n))
    return trace


def test_trace_detail_query_count_does_not_grow_with_spans_and_assessments(experiment, django_assert_num_queries):
    small, large = trace_with(experiment, 1), trace_with(experiment, 50)
    for trace in (small, large):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_api_key(experiment)[1]}")
        # 1. the API key by hash with its experiment ids  2. last_used_at (first use of the key)
        # 3. the trace with its experiment  4. its spans  5. its assessments
        with django_assert_num_queries(5):
            response = client.get(f"/api/v1/traces/{trace.trace_id}")
        assert len(response.json()["spans"]) == len(response.json()["assessments"]) == trace.span_count


def test_assessments_list_has_valid_and_overridden(api_client, trace):
    old = make_feedback(trace, value=1, source_type="CODE", source_id="check")
    services.override_feedback(assessment=old, actor=SYSTEM, channel="api", value=2)
    body = api_client.get(f"/api/v1/traces/{trace.trace_id}/assessments").json()
    assert [(a["value"], a["valid"]) for a in body] == [(1, False), (2, True)]


@pytest.mark.parametrize("suffix", ["", "/assessments"])
def test_unknown_trace_is_404(api_client, suffix):
    response = api_client.get(f"/api/v1/traces/{MISSING_TRACE}{suffix}")
    assert response.status_code == 404 and MISSING_TRACE in response.json()["detail"]


@pytest.mark.parametrize("suffix", ["/feedback", "/expectations"])
def test_creating_on_an_unknown_trace_is_404_for_users_and_malformed_ids(api_client, reviewer, suffix):
    body = {"name": "x", "value": 1}
    assert api_client.post(f"/api/v1/traces/not-a-trace-id{suffix}", body, format="json").status_code == 404
    client = APIClient()
    client.force_login(reviewer)
    assert client.post(f"/api/v1/traces/{MISSING_TRACE}{suffix}", body, format="json").status_code == 404
    assert not Assessment.objects.exists()


# --- create --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [True, False, 4, 4.5, 0, -1, "friendly", "", ["a", 1, None], {"a": {"b": [1.0, 2]}, "ok": True}]
)
def test_feedback_values_come_back_exactly_as_sent(api_client, trace, value):
    response = post_feedback(api_client, trace, value=value)
    assert response.status_code == 201, response.json()
    assert response.json()["value"] == value and type(response.json()["value"]) is type(value)
    again = api_client.get(f"/api/v1/assessments/{response.json()['assessment_id']}").json()["value"]
    assert again == value and type(again) is type(value)


def test_create_feedback_returns_the_assessment_and_writes_one_revision(api_client, api_key, trace):
    response = post_feedback(
        api_client,
        trace,
        value=4,
        rationale="clear",
        span_id=span_id(1),
        metadata={"run": "7"},
        source={"source_type": "LLM_JUDGE", "source_id": "openai:/gpt-4o-mini"},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["assessment_id"].startswith("a-") and len(body["assessment_id"]) == 34
    assert {k: body[k] for k in ("trace_id", "span_id", "name", "kind", "value", "rationale", "metadata", "valid")} == {
        "trace_id": trace.trace_id,
        "span_id": span_id(1),
        "name": "user_satisfaction",
        "kind": "feedback",
        "value": 4,
        "rationale": "clear",
        "metadata": {"run": "7"},
        "valid": True,
    }
    assert body["source"] == {"source_type": "LLM_JUDGE", "source_id": "openai:/gpt-4o-mini"}
    assert response["ETag"] == '"1"'
    [revision] = Revision.objects.all()
    assert (revision.action, revision.channel, revision.actor_key, revision.actor_label) == (
        "create",
        "api",
        api_key[0],
        "key:test key",
    )


def test_source_defaults_to_human_and_the_caller(api_client, trace):
    body = post_feedback(api_client, trace).json()
    assert body["source"] == {"source_type": "HUMAN", "source_id": "key:test key"}


def test_error_only_feedback(api_client, trace):
    error = {"error_code": "TIMEOUT", "error_message": "judge timed out", "stack_trace": "Traceback ..."}
    response = post_feedback(api_client, trace, value=None, error=error, source={"source_type": "LLM_JUDGE"})
    assert response.status_code == 201 and response.json()["error"] == error and response.json()["value"] is None


def test_several_raters_may_use_the_same_name(api_client, trace):
    post_feedback(api_client, trace, value=True, source={"source_id": "u1"})
    post_feedback(api_client, trace, value=False, source={"source_id": "u2"})
    assert Assessment.objects.filter(name="user_satisfaction").count() == 2


def test_create_expectation(api_client, trace):
    response = api_client.post(
        f"/api/v1/traces/{trace.trace_id}/expectations", {"name": "expected_facts", "value": ["a", "b"]}, format="json"
    )
    assert response.status_code == 201 and response.json()["kind"] == "expectation"
    assert response.json()["value"] == ["a", "b"]


def test_an_expectation_needs_a_value(api_client, trace):
    response = api_client.post(f"/api/v1/traces/{trace.trace_id}/expectations", {"name": "x"}, format="json")
    assert response.status_code == 400 and "value" in response.json()


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"name": "n" * 251}, "name"),
        ({"name": ["x"]}, "name"),
        ({"value": None}, "value"),
        ({"value": {"k": "a\x00"}}, "value"),
        ({"span_id": "ffffffffffffffff"}, "span_id"),
        ({"span_id": "not-hex"}, "span_id"),
        ({"source": {"source_type": "ROBOT"}}, "source"),
        ({"source": "HUMAN"}, "source"),
        ({"source": {"source_id": "s" * 251}}, "source"),
        ({"metadata": {"k": 1}}, "metadata"),
        ({"metadata": "k=v"}, "metadata"),
        ({"rationale": {"why": "x"}}, "rationale"),
        ({"value": None, "error": {"error_message": "no code"}}, "error"),
        ({"value": None, "error": "boom"}, "error"),
    ],
)
def test_bad_feedback_is_400_naming_the_field_and_writes_nothing(api_client, trace, body, field):
    response = post_feedback(api_client, trace, **body)
    assert response.status_code == 400, response.json()
    assert field in response.json(), response.json()
    assert not Assessment.objects.exists() and not Revision.objects.exists()


def test_span_not_in_the_trace_names_span_id(api_client, trace, experiment):
    other = make_trace(experiment, spans=make_spans(5, start_ns=1))
    response = post_feedback(api_client, trace, span_id=span_id(4))
    assert other.spans.filter(span_id=span_id(4)).exists()
    assert response.status_code == 400 and "not part of trace" in response.json()["span_id"][0]


def test_malformed_feedback_json_is_400(api_client, trace):
    response = api_client.post(feedback_url(trace), '{"name": "x", "value": tru}', content_type="application/json")
    assert response.status_code == 400 and "JSON parse error" in response.json()["detail"]


def test_idempotency_key_replays_instead_of_creating_twice(api_client, trace):
    headers = {"HTTP_IDEMPOTENCY_KEY": "retry-1"}
    first = api_client.post(feedback_url(trace), {"name": "n", "value": 1}, format="json", **headers)
    again = api_client.post(feedback_url(trace), {"name": "n", "value": 1}, format="json", **headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again["Idempotent-Replayed"] == "true" and again.json()["assessment_id"] == first.json()["assessment_id"]
    assert Assessment.objects.count() == 1 and Revision.objects.count() == 1
    other = api_client.post(feedback_url(trace), {"name": "other", "value": 1}, format="json", **headers)
    assert other.status_code == 409


def test_an_overlong_idempotency_key_is_400(api_client, trace):
    response = api_client.post(
        feedback_url(trace), {"name": "n", "value": 1}, format="json", HTTP_IDEMPOTENCY_KEY="k" * 201
    )
    assert response.status_code == 400 and "Idempotency-Key" in response.json()


# --- read, update, delete -------------------------------------------------------------------------


@pytest.fixture
def feedback(trace):
    return make_feedback(trace, value=3, rationale="ok", source_type="HUMAN", source_id="user_1")


def test_get_assessment_with_etag(api_client, feedback):
    response = api_client.get(f"/api/v1/assessments/{feedback.pk}")
    assert response.status_code == 200 and response["ETag"] == '"1"' and response.json()["value"] == 3


@pytest.mark.parametrize("assessment_id", [MISSING_ASSESSMENT, "x" * 60, "a-%00"])
def test_unknown_assessment_is_404_everywhere(api_client, assessment_id):
    base = f"/api/v1/assessments/{assessment_id}"
    assert api_client.get(base).status_code == 404
    assert api_client.patch(base, {"value": 1}, format="json").status_code == 404
    assert api_client.delete(base).status_code == 404
    assert api_client.post(f"{base}/override", {"value": 1}, format="json").status_code == 404
    assert api_client.get(f"{base}/history").status_code == 404


def test_patch_changes_value_and_writes_an_update_revision(api_client, feedback):
    response = api_client.patch(
        f"/api/v1/assessments/{feedback.pk}", {"value": 5, "rationale": "better"}, format="json", HTTP_IF_MATCH='"1"'
    )
    assert response.status_code == 200, response.json()
    assert response.json()["value"] == 5 and response.json()["version"] == 2 and response["ETag"] == '"2"'
    revision = Revision.objects.get(action="update")
    assert revision.before["value"] == 3 and revision.after["value"] == 5 and revision.channel == "api"


def test_patch_with_a_stale_etag_is_412_and_changes_nothing(api_client, feedback):
    api_client.patch(f"/api/v1/assessments/{feedback.pk}", {"value": 4}, format="json")
    response = api_client.patch(f"/api/v1/assessments/{feedback.pk}", {"value": 5}, format="json", HTTP_IF_MATCH='"1"')
    assert response.status_code == 412 and response["ETag"] == '"2"'
    feedback.refresh_from_db()
    assert feedback.value == 4


def test_patch_with_a_malformed_if_match_is_400(api_client, feedback):
    response = api_client.patch(
        f"/api/v1/assessments/{feedback.pk}", {"value": 5}, format="json", HTTP_IF_MATCH="yesterday"
    )
    assert response.status_code == 400 and "If-Match" in response.json()


@pytest.mark.parametrize(
    "body, field",
    [
        ({"span_id": span_id(1)}, "span_id"),
        ({"source": {"source_type": "CODE", "source_id": "x"}}, "source"),
        ({"kind": "expectation"}, "kind"),
        ({"valid": False}, "valid"),
        ({"name": ""}, "name"),
        ({"name": "n" * 251}, "name"),
        ({"value": None}, "value"),
        ({"metadata": {"k": 2}}, "metadata"),
    ],
)
def test_patch_refuses_what_cannot_change(api_client, feedback, body, field):
    response = api_client.patch(f"/api/v1/assessments/{feedback.pk}", body, format="json")
    assert response.status_code == 400 and field in response.json(), response.json()
    assert not Revision.objects.filter(action="update").exists()


def test_patch_accepts_the_read_representation_back(api_client, feedback):
    current = api_client.get(f"/api/v1/assessments/{feedback.pk}").json()
    response = api_client.patch(f"/api/v1/assessments/{feedback.pk}", {**current, "value": 1}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["value"] == 1


def test_delete_is_204_and_the_history_survives(api_client, feedback):
    response = api_client.delete(f"/api/v1/assessments/{feedback.pk}", HTTP_IF_MATCH='"1"')
    assert response.status_code == 204 and not Assessment.objects.exists()
    assert api_client.get(f"/api/v1/assessments/{feedback.pk}").status_code == 404
    history = api_client.get(f"/api/v1/assessments/{feedback.pk}/history").json()
    assert [r["action"] for r in history] == ["create", "delete"]


def test_delete_with_a_stale_etag_is_412(api_client, feedback):
    response = api_client.delete(f"/api/v1/assessments/{feedback.pk}", HTTP_IF_MATCH='"7"')
    assert response.status_code == 412 and Assessment.objects.exists()


# --- override and history ------------------------------------------------------------------------


@pytest.fixture
def judge_score(trace):
    return make_feedback(
        trace, name="relevance", value=0.2, source_type="LLM_JUDGE", source_id="judge", span_id=span_id(1)
    )


def test_override_creates_a_new_assessment_and_invalidates_the_old(api_client, judge_score):
    response = api_client.post(
        f"/api/v1/assessments/{judge_score.pk}/override",
        {"value": 0.9, "rationale": "judge missed it", "source": {"source_id": "rev"}},
        format="json",
    )
    assert response.status_code == 201, response.json()
    new = response.json()
    assert new["overrides"] == judge_score.pk and new["value"] == 0.9 and new["name"] == "relevance"
    assert new["span_id"] == span_id(1) and new["source"] == {"source_type": "HUMAN", "source_id": "rev"}
    old = api_client.get(f"/api/v1/assessments/{judge_score.pk}").json()
    assert old["valid"] is False and old["overridden_by"] == new["assessment_id"]
    history = api_client.get(f"/api/v1/assessments/{judge_score.pk}/history").json()
    assert [(r["action"], r["assessment_id"]) for r in history] == [
        ("create", judge_score.pk),
        ("override", new["assessment_id"]),
    ]


def test_deleting_the_override_makes_the_original_valid_again(api_client, judge_score):
    new = api_client.post(f"/api/v1/assessments/{judge_score.pk}/override", {"value": 0.9}, format="json").json()
    assert api_client.delete(f"/api/v1/assessments/{new['assessment_id']}").status_code == 204
    assert api_client.get(f"/api/v1/assessments/{judge_score.pk}").json()["valid"] is True


def test_override_twice_or_of_an_expectation_is_409(api_client, judge_score, trace):
    assert (
        api_client.post(f"/api/v1/assessments/{judge_score.pk}/override", {"value": 1}, format="json").status_code
        == 201
    )
    again = api_client.post(f"/api/v1/assessments/{judge_score.pk}/override", {"value": 1}, format="json")
    assert again.status_code == 409 and "already overridden" in again.json()["detail"]
    expectation = make_expectation(trace)
    response = api_client.post(f"/api/v1/assessments/{expectation.pk}/override", {"value": 1}, format="json")
    assert response.status_code == 409


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "value"),
        ({"value": 1, "source": {"source_type": "X"}}, "source"),
        ({"value": 1, "metadata": [1]}, "metadata"),
    ],
)
def test_bad_override_is_400(api_client, judge_score, body, field):
    response = api_client.post(f"/api/v1/assessments/{judge_score.pk}/override", body, format="json")
    assert response.status_code == 400 and field in response.json()
    assert Assessment.objects.count() == 1


def test_history_is_oldest_first_with_actor_and_snapshots(api_client, feedback):
    api_client.patch(f"/api/v1/assessments/{feedback.pk}", {"value": 4}, format="json")
    history = api_client.get(f"/api/v1/assessments/{feedback.pk}/history").json()
    assert [r["action"] for r in history] == ["create", "update"]
    assert history[1]["actor"] == "key:test key" and history[1]["channel"] == "api"
    assert history[1]["before"]["value"] == 3 and history[1]["after"]["value"] == 4
