"""Definitions are enforced on every write path: an out-of-definition value is refused with the
message naming the definition, its version and the rule, and nothing is stored; an
in-definition value is stored with its `definition_version`."""

import json

import pytest
from rest_framework.test import APIClient

from assessments import services as assessment_services
from assessments.definitions import services
from assessments.models import Assessment, PendingAssessment, Revision
from traces.access import Actor

from ..factories import make_feedback, make_trace
from ..mlflow.rawapi import V3, MlflowApi, error

pytestmark = pytest.mark.django_db

SYSTEM = Actor.for_system("test")
SEVEN = "helpfulness (v1) expects an integer from 1 to 5; got 7"


@pytest.fixture
def helpfulness(experiment):
    return services.create_definition(
        experiment=experiment,
        actor=SYSTEM,
        name="helpfulness",
        type="number",
        min=1,
        max=5,
        integer=True,
        levels={"1": "Useless", "5": "Perfect"},
    )


@pytest.fixture
def topic(experiment):
    return services.create_definition(
        experiment=experiment, actor=SYSTEM, name="topic", type="category", options=["billing", "shipping"]
    )


def nothing_stored(name="helpfulness"):
    return not Assessment.objects.filter(name=name).exists() and not PendingAssessment.objects.exists()


def feedback_url(trace):
    return f"/api/v1/traces/{trace.trace_id}/feedback"


# --- native API --------------------------------------------------------------------------------


def test_native_create_refuses_out_of_definition_and_stores_nothing(api_client, trace, helpfulness):
    response = api_client.post(feedback_url(trace), {"name": "helpfulness", "value": 7}, format="json")
    assert response.status_code == 400
    assert response.json() == {"value": [SEVEN]}
    assert nothing_stored() and not Revision.objects.exists()


def test_native_create_stores_in_definition_value_with_its_version(api_client, trace, helpfulness):
    response = api_client.post(feedback_url(trace), {"name": "helpfulness", "value": 4}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["definition_version"] == 1
    assert Assessment.objects.get().definition_version == 1
    undefined = api_client.post(feedback_url(trace), {"name": "anything", "value": "goes"}, format="json")
    assert undefined.status_code == 201 and undefined.json()["definition_version"] is None


def test_native_expectation_is_checked_against_its_kind(api_client, trace, experiment):
    services.create_definition(
        experiment=experiment, actor=SYSTEM, name="expected_answer", kind="expectation", type="text", max_length=5
    )
    url = f"/api/v1/traces/{trace.trace_id}/expectations"
    refused = api_client.post(url, {"name": "expected_answer", "value": "far too long"}, format="json")
    assert refused.status_code == 400
    assert refused.json() == {"value": ["expected_answer (v1) expects text of at most 5 characters; got 12 characters"]}
    as_feedback = api_client.post(feedback_url(trace), {"name": "expected_answer", "value": "x"}, format="json")
    assert as_feedback.status_code == 400 and "defined as expectation" in as_feedback.json()["name"][0]
    assert api_client.post(url, {"name": "expected_answer", "value": "yes"}, format="json").status_code == 201


def test_native_patch_and_override_are_checked(api_client, trace, helpfulness):
    created = api_client.post(feedback_url(trace), {"name": "helpfulness", "value": 3}, format="json").json()
    url = f"/api/v1/assessments/{created['assessment_id']}"
    refused = api_client.patch(url, {"value": 7}, format="json")
    assert refused.status_code == 400 and refused.json() == {"value": [SEVEN]}
    renamed = api_client.patch(url, {"name": "topic_free", "value": 7}, format="json")
    assert renamed.status_code == 200 and renamed.json()["definition_version"] is None
    back = api_client.patch(url, {"name": "helpfulness", "value": 5}, format="json")
    assert back.status_code == 200 and back.json()["definition_version"] == 1
    override = api_client.post(url + "/override", {"value": 0, "source": {"source_type": "HUMAN"}}, format="json")
    assert override.status_code == 400
    assert override.json() == {"value": ["helpfulness (v1) expects an integer from 1 to 5; got 0"]}
    assert Assessment.objects.count() == 1 and Assessment.objects.get().value == 5
    good = api_client.post(url + "/override", {"value": 2, "source": {"source_type": "HUMAN"}}, format="json")
    assert good.status_code == 201 and good.json()["definition_version"] == 1


def test_changing_a_definition_keeps_old_assessments_at_their_version(api_client, trace, helpfulness):
    first = api_client.post(feedback_url(trace), {"name": "helpfulness", "value": 5}, format="json").json()
    services.update_definition(definition=helpfulness.definition, actor=SYSTEM, max=10)
    second = api_client.post(feedback_url(trace), {"name": "helpfulness", "value": 9}, format="json")
    assert second.status_code == 201 and second.json()["definition_version"] == 2
    assert api_client.get(f"/api/v1/assessments/{first['assessment_id']}").json()["definition_version"] == 1
    refused = api_client.post(feedback_url(trace), {"name": "helpfulness", "value": 11}, format="json")
    assert refused.json() == {"value": ["helpfulness (v2) expects an integer from 1 to 10; got 11"]}
    services.archive_definition(definition=helpfulness.definition, actor=SYSTEM)
    free = api_client.post(feedback_url(trace), {"name": "helpfulness", "value": 11}, format="json")
    assert free.status_code == 201 and free.json()["definition_version"] is None
    assert Assessment.objects.get(pk=first["assessment_id"]).definition_version == 1


def test_required_definitions_refuse_undefined_names_everywhere(api_client, trace, experiment, helpfulness):
    services.set_require_definitions(experiment=experiment, actor=SYSTEM, require=True)
    response = api_client.post(feedback_url(trace), {"name": "vibes", "value": True}, format="json")
    assert response.status_code == 400 and "requires definitions" in response.json()["name"][0]
    batch = api_client.post(
        "/api/v1/feedback:batch", {"items": [{"trace_id": trace.trace_id, "name": "vibes", "value": 1}]}, format="json"
    )
    assert batch.status_code == 400
    assert nothing_stored("vibes")


def test_batch_names_the_item_and_stores_nothing(api_client, trace, helpfulness, topic):
    items = [
        {"trace_id": trace.trace_id, "name": "helpfulness", "value": 4},
        {"trace_id": trace.trace_id, "name": "topic", "value": "Billing"},
        {"trace_id": trace.trace_id, "name": "helpfulness", "value": 7},
    ]
    response = api_client.post("/api/v1/feedback:batch", {"items": items}, format="json")
    assert response.status_code == 400, response.content
    body = json.dumps(response.json())
    assert 'topic (v1) expects one of \\"billing\\", \\"shipping\\"; got \\"Billing\\"' in body
    assert SEVEN in body
    errors = response.json()["items"]
    assert set(errors) == {"1", "2"}
    assert not Assessment.objects.exists()
    items[1]["value"], items[2]["value"] = "billing", 1
    response = api_client.post("/api/v1/feedback:batch", {"items": items}, format="json")
    assert response.status_code == 201
    assert list(Assessment.objects.values_list("definition_version", flat=True)) == [1, 1, 1]


# --- end-user tokens ---------------------------------------------------------------------------


def test_end_user_token_post_is_checked(api_client, trace, helpfulness):
    token = api_client.post(
        f"/api/v1/traces/{trace.trace_id}/feedback-tokens", {"names": ["helpfulness"], "max_uses": 3}, format="json"
    ).json()["token"]
    browser = APIClient()
    refused = browser.post(
        "/api/v1/public/feedback", {"token": token, "name": "helpfulness", "value": 7}, format="json"
    )
    assert refused.status_code == 400 and SEVEN in json.dumps(refused.json())
    assert nothing_stored()
    stored = browser.post("/api/v1/public/feedback", {"token": token, "name": "helpfulness", "value": 2}, format="json")
    assert stored.status_code == 201, stored.content
    assert Assessment.objects.get().definition_version == 1


# --- held feedback -----------------------------------------------------------------------------


def test_held_feedback_is_checked_when_held(api_client, api_key, helpfulness):
    trace_id = "tr-" + "ab" * 16
    refused = api_client.post(f"/api/v1/traces/{trace_id}/feedback", {"name": "helpfulness", "value": 7}, format="json")
    assert refused.status_code == 400 and refused.json() == {"value": [SEVEN]}
    assert nothing_stored()
    held = api_client.post(f"/api/v1/traces/{trace_id}/feedback", {"name": "helpfulness", "value": 3}, format="json")
    assert held.status_code == 201, held.content
    held_id = held.json()["assessment_id"]
    patched = MlflowApi(api_key[1]).patch(
        f"{V3}/traces/{trace_id}/assessments/{held_id}",
        {
            "assessment": {"assessment_id": held_id, "trace_id": trace_id, "feedback": {"value": 9}},
            "update_mask": "feedback",
        },
    )
    assert "helpfulness (v1) expects an integer from 1 to 5; got 9" in error(patched, 400, "INVALID_PARAMETER_VALUE")
    assert PendingAssessment.objects.get().payload["updates"] == []


def test_held_feedback_attaches_with_its_version(api_client, experiment, helpfulness):
    trace_id = "tr-" + "cd" * 16
    held = api_client.post(f"/api/v1/traces/{trace_id}/feedback", {"name": "helpfulness", "value": 3}, format="json")
    assert held.status_code == 201, held.content
    make_trace(experiment, trace_id=trace_id)
    assert Assessment.objects.get(pk=held.json()["assessment_id"]).definition_version == 1


# --- MLflow protocol ---------------------------------------------------------------------------


def mlflow_feedback(trace_id, name, value):
    return {
        "assessment_name": name,
        "trace_id": trace_id,
        "source": {"source_type": "HUMAN", "source_id": "user_123"},
        "feedback": {"value": value},
    }


def test_mlflow_create_and_update_answer_invalid_parameter_value(api_key, trace, helpfulness):
    api = MlflowApi(api_key[1])
    message = error(
        api.log(trace.trace_id, mlflow_feedback(trace.trace_id, "helpfulness", 7)), 400, "INVALID_PARAMETER_VALUE"
    )
    assert SEVEN in message
    assert nothing_stored()
    created = api.log(trace.trace_id, mlflow_feedback(trace.trace_id, "helpfulness", 4))
    assert created.status_code == 200, created.content
    assessment_id = created.json()["assessment"]["assessment_id"]
    assert Assessment.objects.get().definition_version == 1
    update = api.patch(
        f"{V3}/traces/{trace.trace_id}/assessments/{assessment_id}",
        {
            "assessment": {"assessment_id": assessment_id, "trace_id": trace.trace_id, "feedback": {"value": 7}},
            "update_mask": "feedback",
        },
    )
    assert SEVEN in error(update, 400, "INVALID_PARAMETER_VALUE")
    assert Assessment.objects.get().value == 4


# --- panel and admin ---------------------------------------------------------------------------


def test_panel_shows_the_refusal_inline_and_stores_nothing(reviewer_client, trace, helpfulness):
    url = f"/traces/{trace.trace_id}/feedback/new/"
    response = reviewer_client.post(
        url, {"name": "helpfulness", "value_type": "number", "value_number": "7"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert SEVEN in response.content.decode()
    assert nothing_stored()
    response = reviewer_client.post(
        url, {"name": "helpfulness", "value_type": "number", "value_number": "4"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert Assessment.objects.get().definition_version == 1


def test_admin_shows_the_refusal_as_a_form_error(client, staff, trace, helpfulness):
    client.force_login(staff)
    data = {
        "trace": trace.trace_id,
        "span_id": "",
        "kind": "feedback",
        "name": "helpfulness",
        "value": "7",
        "error": "null",
        "rationale": "",
        "source_type": "HUMAN",
        "source_id": "",
        "metadata": "{}",
    }
    response = client.post("/admin/assessments/assessment/add/", data)
    assert response.status_code == 200
    assert SEVEN in response.content.decode()
    assert nothing_stored()
    response = client.post("/admin/assessments/assessment/add/", {**data, "value": "5"})
    assert response.status_code == 302
    assert Assessment.objects.get().definition_version == 1


def test_update_through_the_service_keeps_the_stamp_when_only_rationale_changes(trace, helpfulness):
    feedback = make_feedback(trace, name="helpfulness", value=3)
    services.update_definition(definition=helpfulness.definition, actor=SYSTEM, max=9)
    updated = assessment_services.update_assessment(assessment=feedback, actor=SYSTEM, channel="api", rationale="why")
    assert updated.definition_version == 1
    updated = assessment_services.update_assessment(assessment=feedback, actor=SYSTEM, channel="api", value=8)
    assert updated.definition_version == 2


# --- OTLP evaluation events --------------------------------------------------------------------


def otlp_body(score: float) -> dict:
    event_attributes = [
        {"key": "gen_ai.evaluation.name", "value": {"stringValue": "relevance"}},
        {"key": "gen_ai.evaluation.score.value", "value": {"doubleValue": score}},
    ]
    span = {
        "traceId": "0123456789abcdef0123456789abcdef",
        "spanId": "0000000000000001",
        "name": "root",
        "kind": 1,
        "startTimeUnixNano": "1790000000000000000",
        "endTimeUnixNano": "1790000000100000000",
        "status": {"code": 1, "message": ""},
        "events": [
            {"name": "gen_ai.evaluation.result", "timeUnixNano": "1790000000050000000", "attributes": event_attributes}
        ],
    }
    return {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": [span]}]}]}


def test_otlp_stores_the_spans_and_reports_the_refused_evaluation(api_key, experiment, caplog):
    services.create_definition(experiment=experiment, actor=SYSTEM, name="relevance", type="number", min=0, max=1)
    client = APIClient()
    headers = {"Authorization": f"Bearer {api_key[1]}"}
    with caplog.at_level("WARNING"):
        response = client.post(
            "/v1/traces", json.dumps(otlp_body(1.5)), content_type="application/json", headers=headers
        )
    assert response.status_code == 200, response.content
    partial = response.json()["partialSuccess"]
    assert "relevance (v1) expects a number from 0 to 1; got 1.5" in partial["errorMessage"]
    assert int(partial.get("rejectedSpans", 0)) == 0
    trace = experiment.traces.get()
    assert trace.spans.count() == 1
    assert not Assessment.objects.exists()
    assert any("relevance (v1) expects" in record.getMessage() for record in caplog.records)
    body = otlp_body(0.5)
    body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["events"][0]["timeUnixNano"] = "1790000000060000000"
    response = client.post("/v1/traces", json.dumps(body), content_type="application/json", headers=headers)
    assert response.status_code == 200 and response.json() == {}
    assert Assessment.objects.get().definition_version == 1
