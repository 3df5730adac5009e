"""An owner deletes a trace in the browser (confirmation page, then back to the list); the
evaluation run page lists a run's traces with their scores."""

import re

from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from tests.factories import make_experiment, make_feedback, make_trace
from traces.models import Membership, Run, Trace, TraceDeletion

from .test_review_flow import sign_in


def test_owner_deletes_a_trace_after_confirming(watched, live, shots):
    page = watched
    experiment = make_experiment("cleanup")
    olivia = get_user_model().objects.create_user("olivia", password="olivia-pass-123")
    Membership.objects.create(user=olivia, experiment=experiment, role="owner")
    run = Run.objects.create(experiment=experiment, name="calm-heron-1", status="FINISHED")
    doomed = make_trace(experiment, name="doomed", metadata={"mlflow.sourceRun": run.run_id})
    kept = make_trace(experiment, name="kept", metadata={"mlflow.sourceRun": run.run_id})
    make_feedback(doomed, name="exact_match", value=True, source_type="CODE", source_id="default")

    sign_in(page, live, "olivia", "olivia-pass-123")
    page.goto(f"{live}/experiments/{experiment.pk}/traces/")
    page.get_by_role("link", name="Evaluation runs").click()
    page.get_by_role("link", name="calm-heron-1").click()
    expect(page.locator("#run-traces tbody tr")).to_have_count(2)
    expect(page.locator("#run-traces thead")).to_contain_text("exact_match")

    page.goto(f"{live}{doomed.get_absolute_url()}")
    page.get_by_role("link", name="Delete", exact=True).click()
    expect(page.get_by_role("heading", name="Delete this trace?")).to_be_visible()
    page.screenshot(path=str(shots / "trace-delete-confirm.png"))
    page.get_by_role("button", name="Delete trace").click()
    expect(page).to_have_url(re.compile(rf"/experiments/{experiment.pk}/traces/$"))
    expect(page.locator("#trace-table tbody tr")).to_have_count(1)
    assert list(Trace.objects.filter(experiment=experiment)) == [kept]
    assert TraceDeletion.objects.get().actor_label == "olivia"
