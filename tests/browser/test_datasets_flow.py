"""A reviewer builds a golden set in Debian's chromium: ticks traces in the trace list, adds
them to a new dataset, edits an expectation, publishes, publishes again and reads the diff."""

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from assessments.datasets.models import DatasetVersionRecord
from traces.models import Membership

from ..factories import make_expectation, make_experiment, make_trace
from .test_review_flow import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def reviewed(live):
    experiment = make_experiment("rag-demo")
    alice = get_user_model().objects.create_user("alice", password="alice-pass-123")
    Membership.objects.create(user=alice, experiment=experiment, role="reviewer")
    traces = [make_trace(experiment, spans=2) for _ in range(3)]
    make_expectation(traces[0], value="An open source platform for the ML lifecycle.")
    make_expectation(traces[1], value="A tracking server.")
    return {"experiment": experiment, "traces": traces, "live": live}


def test_reviewer_builds_publishes_and_diffs_a_dataset(watched, reviewed, shots):
    page, live, experiment = watched, reviewed["live"], reviewed["experiment"]
    sign_in(page, live)
    page.goto(f"{live}/experiments/{experiment.pk}/traces/")
    rows = page.locator("#trace-table tbody tr")
    rows.nth(0).get_by_role("checkbox").check()
    rows.nth(1).get_by_role("checkbox").check()
    page.screenshot(path=str(shots / "datasets-selection.png"))
    page.get_by_role("button", name="Add selected to a dataset").click()

    expect(page.get_by_role("heading", name="Add 2 traces to a dataset")).to_be_visible()
    page.get_by_label("Name of the new dataset").fill("golden")
    page.get_by_role("button", name="Add to dataset").click()
    expect(page.locator("#record-table tbody tr")).to_have_count(2)
    expect(page.locator(".notice-success")).to_contain_text("2 records added")

    page.get_by_role("button", name="Publish version 1").click()
    expect(page.locator("#version-table tbody tr")).to_have_count(1)

    page.locator("#record-table tbody tr").first.get_by_role("link", name="Edit").click()
    page.get_by_label("Expectations").fill('{"expected_answer": "Edited by alice."}')
    page.get_by_role("button", name="Save record").click()
    expect(page.locator("#record-table")).to_contain_text("Edited by alice.")
    page.get_by_label("Traces matching a filter").fill("expectation.expected_answer IS NOT NULL")
    page.get_by_role("button", name="Add records").click()
    expect(page.locator(".notice-success")).to_contain_text("0 records added, 2 refreshed")
    page.screenshot(path=str(shots / "datasets-detail.png"), full_page=True)
    # refreshing from the trace brings its expectation back: edit once more, then publish
    page.locator("#record-table tbody tr").first.get_by_role("link", name="Edit").click()
    page.get_by_label("Expectations").fill('{"expected_answer": "Edited by alice."}')
    page.get_by_role("button", name="Save record").click()
    page.get_by_role("button", name="Publish version 2").click()
    expect(page.locator("#version-table tbody tr")).to_have_count(2)

    page.get_by_role("button", name="Show differences").click()
    expect(page.locator("#diff-summary")).to_contain_text("v1 → v2: 0 added · 0 removed · 1 changed · 1 unchanged")
    page.screenshot(path=str(shots / "datasets-diff.png"), full_page=True)
    first = DatasetVersionRecord.objects.filter(version__version=1).order_by("position")
    assert "Edited by alice." not in str([r.expectations for r in first])
