"""Assessment admin writes through the services (channel admin, one revision per change);
revisions and pending assessments are read-only."""

import pytest

from assessments import services
from assessments.models import Assessment, Revision

from ..factories import SYSTEM, make_feedback, span_id

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/assessments/assessment/add/"


def change_url(assessment):
    return f"/admin/assessments/assessment/{assessment.pk}/change/"


def add_form(trace, **overrides):
    return {
        "trace": trace.trace_id,
        "span_id": "",
        "kind": "feedback",
        "name": "rating",
        "value": "4",
        "error": "null",
        "rationale": "good",
        "source_type": "HUMAN",
        "source_id": "",
        "metadata": "{}",
        **overrides,
    }


def test_adding_feedback_in_admin_uses_the_service(admin_client, admin_user, trace):
    response = admin_client.post(ADD_URL, add_form(trace, span_id=span_id(1), metadata='{"k": "v"}'))
    assert response.status_code == 302, response.context["adminform"].form.errors
    assessment = Assessment.objects.get()
    assert (assessment.value, assessment.span_id, assessment.metadata) == (4, span_id(1), {"k": "v"})
    assert assessment.created_by == admin_user and assessment.source_id == "admin"
    [revision] = Revision.objects.all()
    assert (revision.action, revision.channel, revision.actor_user) == ("create", "admin", admin_user)


def test_adding_an_expectation_in_admin(admin_client, trace):
    response = admin_client.post(
        ADD_URL, add_form(trace, kind="expectation", name="expected_answer", value='"MLflow is a platform"')
    )
    assert response.status_code == 302
    assert Assessment.objects.get().kind == "expectation" and Revision.objects.get().channel == "admin"


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"span_id": "ffffffffffffffff"}, "is not part of trace"),
        ({"value": "null"}, "Feedback needs a value or an error"),
        ({"metadata": '{"k": 1}'}, "values must be strings"),
        ({"kind": "expectation", "error": '{"error_code": "X"}'}, "cannot carry an error"),
        ({"error": '"boom"', "value": "null"}, "must be an object"),
    ],
)
def test_service_errors_show_on_the_form_and_write_nothing(admin_client, trace, overrides, message):
    response = admin_client.post(ADD_URL, add_form(trace, **overrides))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Assessment.objects.exists() and not Revision.objects.exists()


def test_changing_feedback_in_admin_writes_an_update_revision(admin_client, admin_user, trace):
    feedback = make_feedback(trace, value=2)
    response = admin_client.post(
        change_url(feedback),
        {
            "name": "user_satisfaction",
            "value": "5",
            "error": "null",
            "rationale": "re-rated",
            "metadata": "{}",
        },
    )
    assert response.status_code == 302
    feedback.refresh_from_db()
    assert (feedback.value, feedback.rationale, feedback.version) == (5, "re-rated", 2)
    revision = Revision.objects.get(action="update")
    assert (revision.channel, revision.actor_user, revision.before["value"], revision.after["value"]) == (
        "admin",
        admin_user,
        2,
        5,
    )


def test_the_change_form_cannot_alter_source_or_span(admin_client, trace):
    feedback = make_feedback(trace, value=2, source_id="user_1")
    admin_client.post(
        change_url(feedback),
        {
            "name": "user_satisfaction",
            "value": "2",
            "error": "null",
            "rationale": "",
            "metadata": "{}",
            "source_id": "hacker",
            "span_id": span_id(1),
            "valid": "",
        },
    )
    feedback.refresh_from_db()
    assert (feedback.source_id, feedback.span_id, feedback.valid) == ("user_1", None, True)
    assert not Revision.objects.filter(action="update").exists()


def test_deleting_in_admin_writes_a_delete_revision(admin_client, admin_user, trace):
    feedback = make_feedback(trace)
    response = admin_client.post(f"/admin/assessments/assessment/{feedback.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302 and not Assessment.objects.exists()
    revision = Revision.objects.get(action="delete")
    assert (revision.channel, revision.actor_user, revision.assessment_id) == ("admin", admin_user, feedback.pk)


def test_bulk_delete_goes_through_the_service_and_restores_overridden(admin_client, trace):
    judge = make_feedback(trace, name="relevance", value=0.1, source_type="LLM_JUDGE", source_id="judge")
    override = services.override_feedback(assessment=judge, actor=SYSTEM, channel="api", value=0.9)
    other = make_feedback(trace, name="tone", value="ok")
    response = admin_client.post(
        "/admin/assessments/assessment/",
        {
            "action": "delete_selected",
            "_selected_action": [override.pk, other.pk],
            "post": "yes",
        },
    )
    assert response.status_code == 302
    assert list(Assessment.objects.values_list("pk", "valid")) == [(judge.pk, True)]
    deletes = Revision.objects.filter(action="delete", channel="admin")
    assert sorted(deletes.values_list("assessment_id", flat=True)) == sorted([override.pk, other.pk])


def test_assessment_pages_render(admin_client, trace):
    feedback = make_feedback(trace, value={"a": [1, 2]})
    make_feedback(trace, name="judge", value=None, error={"error_code": "TIMEOUT"})
    changelist = admin_client.get("/admin/assessments/assessment/", {"q": "judge", "kind__exact": "feedback"})
    assert changelist.status_code == 200 and b"TIMEOUT" in changelist.content
    assert admin_client.get(change_url(feedback)).status_code == 200
    assert admin_client.get(ADD_URL).status_code == 200


def test_revisions_are_read_only(admin_client, trace):
    make_feedback(trace)
    revision = Revision.objects.get()
    assert admin_client.get("/admin/assessments/revision/").status_code == 200
    page = admin_client.get(f"/admin/assessments/revision/{revision.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert admin_client.get("/admin/assessments/revision/add/").status_code == 403
    assert (
        admin_client.post(f"/admin/assessments/revision/{revision.pk}/change/", {"action": "delete"}).status_code == 403
    )
    assert admin_client.post(f"/admin/assessments/revision/{revision.pk}/delete/", {"post": "yes"}).status_code == 403
    bulk = admin_client.post(
        "/admin/assessments/revision/", {"action": "delete_selected", "_selected_action": [revision.pk], "post": "yes"}
    )
    assert Revision.objects.filter(pk=revision.pk).exists() and bulk.status_code in (200, 302)


def test_pending_assessments_are_read_only(admin_client):
    assert admin_client.get("/admin/assessments/pendingassessment/").status_code == 200
    assert admin_client.get("/admin/assessments/pendingassessment/add/").status_code == 403
