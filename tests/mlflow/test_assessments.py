"""The assessment endpoints of the MLflow protocol, as raw HTTP: shapes, quirks kept, quirks fixed."""

import pytest
from mlflow.protos import service_pb2

from assessments.models import Assessment, Revision

from . import payloads
from .payloads import new_trace_id, span_hex
from .rawapi import V3, error, proto, stored_trace

pytestmark = pytest.mark.django_db


@pytest.fixture
def trace_id(api, experiment):
    return stored_trace(api, experiment)


def created(response) -> dict:
    assert response.status_code == 200, response.content
    return proto(response.json(), service_pb2.CreateAssessment.Response) and response.json()["assessment"]


def test_log_feedback_docs_example(api, trace_id):
    assessment = created(api.log(trace_id, payloads.feedback(rationale="User indicated response was helpful")))
    assert assessment["assessment_id"].startswith("a-") and len(assessment["assessment_id"]) == 34
    assert assessment == {
        "assessment_id": assessment["assessment_id"],
        "assessment_name": "user_satisfaction",
        "trace_id": trace_id,
        "source": {"source_type": "HUMAN", "source_id": "user_123"},
        "create_time": "2026-11-26T14:22:33.625Z",
        "last_update_time": "2026-11-26T14:22:33.625Z",
        "feedback": {"value": True},
        "rationale": "User indicated response was helpful",
        "valid": True,
    }
    [revision] = Revision.objects.filter(assessment_id=assessment["assessment_id"])
    assert (revision.action, revision.channel, revision.actor_key is not None) == ("create", "mlflow", True)


@pytest.mark.parametrize(
    "value", [0.6, 4.0, "friendly", {"a": {"b": [1.0, 2.0]}, "ok": True}, ["verbosity", "x"], False]
)
def test_feedback_values_round_trip(api, trace_id, value):
    assessment = created(api.log(trace_id, payloads.feedback("v", value)))
    got = api.get(
        f"{V3}/traces/{trace_id}/assessments/{assessment['assessment_id']}",
        trace_id=trace_id,
        assessment_id=assessment["assessment_id"],
    ).json()["assessment"]
    assert got["feedback"]["value"] == value and type(got["feedback"]["value"]) is type(value)


def test_feedback_with_error_defaults_span_and_metadata(api, trace_id):
    body = payloads.feedback(
        "faithfulness",
        None,
        source={"source_type": "CODE", "source_id": "default"},
        span_id=span_hex(2),
        metadata={"judge_model": "gpt-4o-mini", "temperature": "0.0"},
    )
    body["feedback"]["error"] = {
        "error_code": "TimeoutError",
        "error_message": "judge timed out after 30s",
        "stack_trace": "Traceback …",
    }
    assessment = created(api.log(trace_id, body))
    stored = Assessment.objects.get(pk=assessment["assessment_id"])
    assert stored.error == {
        "error_code": "TimeoutError",
        "error_message": "judge timed out after 30s",
        "stack_trace": "Traceback …",
    }
    assert (stored.span_id, stored.metadata["temperature"], stored.source_type) == (span_hex(2), "0.0", "CODE")
    assert assessment["feedback"]["error"]["error_code"] == "TimeoutError"


def test_expectations_scalar_and_serialized(api, trace_id):
    scalar = created(
        api.log(
            trace_id,
            {
                "assessment_name": "expected_answer",
                "source": {"source_type": "HUMAN", "source_id": "x"},
                "expectation": {"value": "MLflow is an open source platform"},
            },
        )
    )
    assert scalar["expectation"] == {"value": "MLflow is an open source platform"} and scalar["valid"] is True
    facts = {"facts": ["open source", "ML lifecycle"], "must_cite": True}
    serialized = created(
        api.log(
            trace_id,
            {
                "assessment_name": "expected_facts",
                "expectation": {
                    "serialized_value": {
                        "serialization_format": "JSON_FORMAT",
                        "value": '{"facts": ["open source", "ML lifecycle"], "must_cite": true}',
                    }
                },
            },
        )
    )
    assert Assessment.objects.get(pk=serialized["assessment_id"]).value == facts
    assert serialized["expectation"]["serialized_value"]["serialization_format"] == "JSON_FORMAT"
    assert serialized["source"] == {"source_type": "HUMAN", "source_id": "default"}  # missing source: client default
    plain = created(api.log(trace_id, {"assessment_name": "list", "expectation": {"value": [1.0, 2.0]}}))
    assert "serialized_value" in plain["expectation"]


def test_client_chosen_id_and_duplicate(api, trace_id):
    assessment = created(api.log(trace_id, payloads.feedback(assessment_id="a-client-chosen-0001")))
    assert assessment["assessment_id"] == "a-client-chosen-0001"
    message = error(
        api.log(trace_id, payloads.feedback(assessment_id="a-client-chosen-0001")), 400, "RESOURCE_ALREADY_EXISTS"
    )
    assert "a-client-chosen-0001" in message


def test_body_trace_id_is_ignored_for_the_path(api, trace_id):
    assessment = created(api.log(trace_id, payloads.feedback(trace_id=new_trace_id())))
    assert assessment["trace_id"] == trace_id


@pytest.mark.parametrize(
    "assessment, message",
    [
        (None, "Missing value for required parameter 'assessment'"),
        ({"assessment_name": "x"}, "needs exactly one of 'feedback' or 'expectation'"),
        (payloads.feedback(name="x" * 300), "'assessment_name' is 300 characters long; the limit is 250"),
        (
            payloads.feedback(source={"source_type": "HUMAN", "source_id": "s" * 300}),
            "'source.source_id' is 300 characters",
        ),
        (payloads.feedback(source={"source_type": "ROBOT"}), "Invalid assessment source type: ROBOT"),
        (payloads.feedback(name=""), "'assessment_name' must be a non-empty string"),
        (payloads.feedback(value=None), "Feedback needs a value or an error"),
        (payloads.feedback(span_id="xyz"), "'span_id' must be 16 lowercase hex digits"),
        (payloads.feedback(create_time="tuesday"), "'create_time'"),
        (payloads.feedback(assessment_id="a-" + "0" * 60), "'assessment_id' must be a string of at most 50 characters"),
        ({"assessment_name": "x", "expectation": {"value": None}}, "An expectation needs a value"),
        ({"assessment_name": "x", "issue": {"issue_name": "iss-1"}}, "Issue references are not supported"),
    ],
)
def test_bad_creates_are_400_with_the_reason(api, trace_id, assessment, message):
    response = api.post(f"{V3}/traces/{trace_id}/assessments", {} if assessment is None else {"assessment": assessment})
    assert message in error(response, 400, "INVALID_PARAMETER_VALUE")
    assert not Assessment.objects.exists()


def test_unknown_and_malformed_trace_ids(api):
    other = new_trace_id()
    # well-formed and unseen: held until the trace arrives (see test_pending.py)
    assert api.log(other, payloads.feedback()).status_code == 200
    error(api.log("tr-nope", payloads.feedback()), 404, "RESOURCE_DOES_NOT_EXIST")


def test_get_assessment(api, trace_id):
    assessment_id = created(api.log(trace_id, payloads.feedback()))["assessment_id"]
    response = api.get(f"{V3}/traces/{trace_id}/assessments/{assessment_id}")  # path only works too
    assert proto(response.json(), service_pb2.GetAssessmentRequest.Response).assessment.assessment_id == assessment_id
    message = error(api.get(f"{V3}/traces/{trace_id}/assessments/a-missing"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert message == f"Assessment with ID 'a-missing' not found for trace '{trace_id}'"
    other_trace = new_trace_id()
    error(api.get(f"{V3}/traces/{other_trace}/assessments/{assessment_id}"), 404, "RESOURCE_DOES_NOT_EXIST")


def patch(api, trace_id, assessment_id, assessment, mask):
    return api.patch(
        f"{V3}/traces/{trace_id}/assessments/{assessment_id}",
        {"assessment": {"assessment_id": assessment_id, "trace_id": trace_id, **assessment}, "update_mask": mask},
    )


def test_update_assessment(api, trace_id):
    body = payloads.feedback(metadata={"k1": "v1", "k2": "v2"})
    assessment_id = created(api.log(trace_id, body))["assessment_id"]
    response = patch(
        api,
        trace_id,
        assessment_id,
        {
            "assessment_name": "user_satisfaction",
            "feedback": {"value": False},
            "rationale": "Changed my mind",
            "metadata": {"k2": "v2b"},
        },
        "assessmentName,feedback,rationale,metadata",
    )
    updated = proto(response.json(), service_pb2.UpdateAssessment.Response).assessment
    assert updated.feedback.value.bool_value is False and updated.rationale == "Changed my mind"
    assert dict(updated.metadata) == {"k1": "v1", "k2": "v2b"}  # merged, as MLflow does
    assert (updated.source.source_id, updated.create_time.ToJsonString()) == ("user_123", "2026-11-26T14:22:33.625Z")
    assert updated.last_update_time.ToJsonString() > "2026-11-26T14:22:33.625Z"
    revisions = Revision.objects.filter(assessment_id=assessment_id).order_by("id")
    assert [(r.action, r.channel) for r in revisions] == [("create", "mlflow"), ("update", "mlflow")]
    # Feedback() without a name sends "feedback" as the name: MLflow renames, and so do we.
    response = patch(
        api,
        trace_id,
        assessment_id,
        {"assessment_name": "feedback", "feedback": {"value": True}},
        "assessmentName,feedback",
    )
    assert response.json()["assessment"]["assessment_name"] == "feedback"
    # snake_case paths and a JSON list of paths are understood too
    response = patch(api, trace_id, assessment_id, {"rationale": "again"}, ["rationale"])
    assert response.json()["assessment"]["rationale"] == "again"


@pytest.mark.parametrize(
    "assessment, mask, status, code, message",
    [
        ({"valid": False}, "valid", 400, "INVALID_PARAMETER_VALUE", "'valid' is set by the server"),
        ({"source": {"source_type": "CODE"}}, "source", 400, "INVALID_PARAMETER_VALUE", "'source' cannot be changed"),
        ({"span_id": span_hex(1)}, "spanId", 400, "INVALID_PARAMETER_VALUE", "'span_id' cannot be changed"),
        ({"rationale": "x"}, "", 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'update_mask'"),
        ({"rationale": "x"}, "colour", 400, "INVALID_PARAMETER_VALUE", "Unknown update_mask path 'colour'"),
        (
            {"expectation": {"value": "x"}},
            "expectation",
            400,
            "INVALID_PARAMETER_VALUE",
            "Cannot update expectation value on a Feedback",
        ),
        ({"assessment_name": "n" * 300}, "assessmentName", 400, "INVALID_PARAMETER_VALUE", "the limit is 250"),
    ],
)
def test_bad_updates(api, trace_id, assessment, mask, status, code, message):
    assessment_id = created(api.log(trace_id, payloads.feedback()))["assessment_id"]
    assert message in error(patch(api, trace_id, assessment_id, assessment, mask), status, code)
    assert Assessment.objects.get(pk=assessment_id).version == 1


def test_feedback_update_on_expectation_and_unknown_id(api, trace_id):
    expectation = created(api.log(trace_id, {"assessment_name": "e", "expectation": {"value": "x"}}))["assessment_id"]
    message = error(
        patch(api, trace_id, expectation, {"feedback": {"value": 1.0}}, "feedback"), 400, "INVALID_PARAMETER_VALUE"
    )
    assert message == "Cannot update feedback value on an Expectation assessment."
    error(patch(api, trace_id, "a-nope", {"rationale": "x"}, "rationale"), 404, "RESOURCE_DOES_NOT_EXIST")


def test_override_then_delete_override_restores(api, trace_id):
    old = created(
        api.log(
            trace_id,
            payloads.feedback(
                "relevance", 0.6, source={"source_type": "LLM_JUDGE", "source_id": "judge"}, span_id=span_hex(2)
            ),
        )
    )["assessment_id"]
    new = created(
        api.log(
            trace_id, payloads.feedback("relevance", 0.9, overrides=old, rationale="Human reviewer: fully relevant")
        )
    )
    assert new["overrides"] == old and new["span_id"] == span_hex(2)
    info = api.get(f"{V3}/traces/{trace_id}").json()["trace"]["trace_info"]
    valid = {a["assessment_id"]: a["valid"] for a in info["assessments"]}
    assert valid == {old: False, new["assessment_id"]: True}  # overridden ones are still returned
    assert [r.action for r in Revision.objects.filter(related_assessment_id=old)] == ["override"]
    assert (
        api.delete(
            f"{V3}/traces/{trace_id}/assessments/{new['assessment_id']}",
            {"trace_id": trace_id, "assessment_id": new["assessment_id"]},
        ).json()
        == {}
    )
    assert Assessment.objects.get(pk=old).valid is True
    message = error(
        api.log(trace_id, payloads.feedback("relevance", 1.0, overrides="a-does-not-exist")),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    assert message == f"Assessment with ID 'a-does-not-exist' not found for trace '{trace_id}'"


def test_override_of_an_expectation_is_refused(api, trace_id):
    expectation = created(api.log(trace_id, {"assessment_name": "e", "expectation": {"value": "x"}}))["assessment_id"]
    assert "only feedback can be overridden" in error(
        api.log(trace_id, payloads.feedback("e", 1.0, overrides=expectation)), 400, "INVALID_PARAMETER_VALUE"
    )


def test_delete_is_idempotent(api, trace_id):
    assessment_id = created(api.log(trace_id, payloads.feedback()))["assessment_id"]
    path = f"{V3}/traces/{trace_id}/assessments/{assessment_id}"
    assert api.delete(path, {"trace_id": trace_id, "assessment_id": assessment_id}).json() == {}
    assert api.delete(path).json() == {}
    assert api.delete(f"{V3}/traces/{new_trace_id()}/assessments/a-unknown").json() == {}
    assert not Assessment.objects.exists()
    assert [r.action for r in Revision.objects.filter(assessment_id=assessment_id)] == ["create", "delete"]


def test_feedback_from_the_page_is_visible_to_the_client(api, trace_id, reviewer):
    from assessments import services
    from traces.access import Actor
    from traces.models import Trace

    services.log_feedback(
        trace=Trace.objects.get(pk=trace_id),
        name="reviewer_rating",
        value=3,
        actor=Actor.for_user(reviewer),
        channel="ui",
        source_type="HUMAN",
        source_id="alice",
    )
    [assessment] = api.get(f"{V3}/traces/{trace_id}").json()["trace"]["trace_info"]["assessments"]
    assert (assessment["assessment_name"], assessment["feedback"]["value"], assessment["source"]["source_id"]) == (
        "reviewer_rating",
        3,
        "alice",
    )
