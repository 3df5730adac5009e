"""The trace list's Export menu downloads the filtered assessments; an owner sets the retention on
the experiment's Retention page."""

import json

from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from tests.factories import make_experiment, make_feedback, make_trace
from traces.models import Experiment, Membership

from .test_review_flow import sign_in


def test_export_menu_downloads_the_filtered_assessments_and_owner_sets_retention(watched, live, shots):
    page = watched
    experiment = make_experiment("exports")
    olivia = get_user_model().objects.create_user("olivia", password="olivia-pass-123")
    Membership.objects.create(user=olivia, experiment=experiment, role="owner")
    down = make_feedback(make_trace(experiment, name="bad answer"), value=False)
    make_feedback(make_trace(experiment, name="good answer"), value=True)

    sign_in(page, live, "olivia", "olivia-pass-123")
    page.goto(f"{live}/experiments/{experiment.pk}/traces/?filter=feedback.user_satisfaction%20%3D%20false")
    page.get_by_text("Export", exact=True).click()
    page.screenshot(path=str(shots / "export-menu.png"))
    with page.expect_download() as download:
        page.locator(".export-menu").get_by_role("link", name="JSONL").first.click()
    lines = open(download.value.path()).read().splitlines()
    assert [json.loads(line)["assessment_id"] for line in lines] == [down.assessment_id]
    assert download.value.suggested_filename == f"experiment-{experiment.pk}-assessments.jsonl"

    page.get_by_role("link", name="Retention").click()
    page.get_by_label("Keep traces for (days)").fill("0")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".field-error")).to_contain_text("greater than or equal to 1")
    page.get_by_label("Keep traces for (days)").fill("90")
    page.get_by_label("Keep traces that have human feedback").check()
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".retention-page .notice")).to_contain_text("Retention saved")
    page.screenshot(path=str(shots / "retention-page.png"), full_page=True)
    experiment = Experiment.objects.get(pk=experiment.pk)
    assert (experiment.retention_days, experiment.retention_keep_human) == (90, True)
