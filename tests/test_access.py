"""Who may read and write what, through the native API: anonymous, a key for another experiment,
a user outside the experiment, viewer, reviewer, owner, staff and the experiment's own key.

Outsiders get 404 (existence is not leaked), members without the needed role get 403.
"""

import pytest
from rest_framework.test import APIClient

from assessments.models import Assessment

from .factories import make_api_key, make_feedback, make_spans, span_id

pytestmark = pytest.mark.django_db

PERSONAS = ["anonymous", "other_key", "outsider", "viewer", "reviewer", "owner", "staff", "own_key"]


@pytest.fixture
def as_persona(request, experiment, other_experiment):
    """persona name → an APIClient acting as that persona."""

    def client_for(persona: str) -> APIClient:
        client = APIClient()
        if persona == "own_key":
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_api_key(experiment)[1]}")
        elif persona == "other_key":
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_api_key(other_experiment)[1]}")
        elif persona != "anonymous":
            client.force_login(request.getfixturevalue(persona))
        return client

    return client_for


@pytest.fixture
def users_feedback(trace):
    """HUMAN feedback written by the app on behalf of an end user: not the reviewer's own."""
    return make_feedback(trace, value=True, source_type="HUMAN", source_id="user_1")


@pytest.fixture
def judge_feedback(trace):
    return make_feedback(trace, name="relevance", value=0.3, source_type="LLM_JUDGE", source_id="judge")


def expect(table: dict[str, int]):
    return pytest.mark.parametrize("persona, status", list(table.items()))


READ = {
    "anonymous": 401,
    "other_key": 404,
    "outsider": 404,
    "viewer": 200,
    "reviewer": 200,
    "owner": 200,
    "staff": 200,
    "own_key": 200,
}
CREATE = {**READ, "viewer": 403, "reviewer": 201, "owner": 201, "staff": 201, "own_key": 201}
CHANGE_OTHERS = {**READ, "viewer": 403, "reviewer": 403}
DELETE_OTHERS = {**CHANGE_OTHERS, "owner": 204, "staff": 204, "own_key": 204}
OVERRIDE_JUDGE = CREATE
OVERRIDE_OTHERS_HUMAN = {**CREATE, "reviewer": 403}


@expect(READ)
@pytest.mark.parametrize("path", ["", "/assessments"])
def test_read_trace(as_persona, trace, users_feedback, persona, status, path):
    assert as_persona(persona).get(f"/api/v1/traces/{trace.trace_id}{path}").status_code == status


@expect(READ)
@pytest.mark.parametrize("path", ["", "/history"])
def test_read_assessment(as_persona, users_feedback, persona, status, path):
    assert as_persona(persona).get(f"/api/v1/assessments/{users_feedback.pk}{path}").status_code == status


@expect(READ)
def test_search_in_the_experiment(as_persona, trace, experiment, persona, status):
    response = as_persona(persona).get("/api/v1/traces", {"experiment_id": experiment.pk})
    assert response.status_code == status
    if status == 200:
        assert [t["trace_id"] for t in response.json()["traces"]] == [trace.trace_id]


@expect({**READ, "other_key": 200, "outsider": 200})
def test_experiment_list_shows_only_visible_experiments(as_persona, experiment, persona, status):
    response = as_persona(persona).get("/api/v1/experiments")
    assert response.status_code == status
    if status == 200:
        visible = persona not in ("other_key", "outsider")
        assert ("rag-demo" in [e["name"] for e in response.json()]) is visible


@expect(CREATE)
def test_ingest_trace(as_persona, experiment, persona, status):
    body = {"experiment_id": str(experiment.pk), "spans": make_spans(2)}
    assert as_persona(persona).post("/api/v1/traces", body, format="json").status_code == status


# A key of another experiment is answered as for a trace that has not arrived: its create is held
# (and never attaches), so the answer does not tell that the trace exists elsewhere.
@expect({**CREATE, "other_key": 201})
@pytest.mark.parametrize("kind", ["feedback", "expectations"])
def test_create_assessment(as_persona, trace, persona, status, kind):
    response = as_persona(persona).post(
        f"/api/v1/traces/{trace.trace_id}/{kind}", {"name": "n", "value": 1}, format="json"
    )
    assert response.status_code == status
    assert Assessment.objects.filter(name="n").exists() is (status == 201 and persona != "other_key")


@expect(CHANGE_OTHERS)
def test_change_someone_elses_feedback(as_persona, users_feedback, persona, status):
    response = as_persona(persona).patch(f"/api/v1/assessments/{users_feedback.pk}", {"value": False}, format="json")
    assert response.status_code == status
    users_feedback.refresh_from_db()
    assert users_feedback.value is (status != 200)


@expect(DELETE_OTHERS)
def test_delete_someone_elses_feedback(as_persona, users_feedback, persona, status):
    response = as_persona(persona).delete(f"/api/v1/assessments/{users_feedback.pk}")
    assert response.status_code == status
    assert Assessment.objects.filter(pk=users_feedback.pk).exists() is (status != 204)


@expect(OVERRIDE_JUDGE)
def test_override_a_judge_score(as_persona, judge_feedback, persona, status):
    response = as_persona(persona).post(
        f"/api/v1/assessments/{judge_feedback.pk}/override", {"value": 0.9}, format="json"
    )
    assert response.status_code == status


@expect(OVERRIDE_OTHERS_HUMAN)
def test_override_someone_elses_human_feedback(as_persona, users_feedback, persona, status):
    response = as_persona(persona).post(
        f"/api/v1/assessments/{users_feedback.pk}/override", {"value": False}, format="json"
    )
    assert response.status_code == status


def test_a_reviewer_may_change_and_delete_their_own_feedback(as_persona, trace):
    client = as_persona("reviewer")
    created = client.post(
        f"/api/v1/traces/{trace.trace_id}/feedback",
        {"name": "rating", "value": 3, "span_id": span_id(1)},
        format="json",
    )
    assessment_id = created.json()["assessment_id"]
    assert created.json()["source"] == {"source_type": "HUMAN", "source_id": "alice"}
    assert client.patch(f"/api/v1/assessments/{assessment_id}", {"value": 4}, format="json").status_code == 200
    assert client.delete(f"/api/v1/assessments/{assessment_id}").status_code == 204


def test_another_reviewer_may_not_change_it(as_persona, trace, other_reviewer):
    created = (
        as_persona("reviewer")
        .post(f"/api/v1/traces/{trace.trace_id}/feedback", {"name": "r", "value": 3}, format="json")
        .json()
    )
    client = APIClient()
    client.force_login(other_reviewer)
    assert (
        client.patch(f"/api/v1/assessments/{created['assessment_id']}", {"value": 1}, format="json").status_code == 403
    )


def test_session_writes_need_the_csrf_token(reviewer, trace):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(reviewer)
    response = client.post(f"/api/v1/traces/{trace.trace_id}/feedback", {"name": "n", "value": 1}, format="json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
