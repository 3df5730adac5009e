"""A reviewer rates with definitions in Debian's chromium: the form shows the definition's
levels and options, digit keys pick them, and the values are stored with their version."""

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from assessments.definitions import services
from assessments.models import Assessment
from traces.access import Actor
from traces.models import Membership

from ..factories import make_experiment, make_trace
from .test_review_flow import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def defined(live):
    experiment = make_experiment("rag-demo")
    alice = get_user_model().objects.create_user("alice", password="alice-pass-123")
    Membership.objects.create(user=alice, experiment=experiment, role="reviewer")
    system = Actor.for_system("test")
    services.create_definition(
        experiment=experiment,
        actor=system,
        name="helpfulness",
        type="number",
        min=1,
        max=5,
        integer=True,
        levels={"1": "Useless", "3": "Partly useful", "5": "Perfect"},
        description="How much did the answer help the user?",
    )
    services.create_definition(
        experiment=experiment,
        actor=system,
        name="topic",
        type="category",
        options=[
            {"value": "billing", "label": "Billing", "description": "Invoices and payments"},
            {"value": "shipping", "label": "Shipping", "description": "Where is my parcel"},
        ],
    )
    return {"trace": make_trace(experiment, spans=2), "live": live}


def test_reviewer_picks_a_level_and_an_option_by_keyboard(watched, defined, shots):
    page, live, trace = watched, defined["live"], defined["trace"]
    sign_in(page, live)
    page.goto(f"{live}/traces/{trace.trace_id}/")
    panel = page.locator("#assessment-panel")

    panel.get_by_role("button", name="Add feedback").click()
    panel.get_by_role("button", name="helpfulness", exact=True).click()
    levels = panel.locator("[data-definition=helpfulness]")
    expect(levels).to_contain_text("How much did the answer help the user?")
    expect(levels.locator(".def-level")).to_have_count(5)
    expect(levels.locator(".def-level").nth(2)).to_contain_text("Partly useful")
    page.locator("body").focus()
    page.keyboard.press("4")
    expect(levels.get_by_role("radio", name="4")).to_be_checked()
    page.screenshot(path=str(shots / "definition-levels.png"))
    panel.get_by_role("button", name="Save").click()
    expect(panel.locator("[data-definition]")).to_have_count(0)
    stored = Assessment.objects.get(name="helpfulness")
    assert (stored.value, stored.definition_version) == (4, 1)

    panel.get_by_role("button", name="Add feedback").click()
    panel.get_by_role("button", name="topic", exact=True).click()
    options = panel.locator("[data-definition=topic]")
    expect(options).to_contain_text("Where is my parcel")
    page.locator("body").focus()
    page.keyboard.press("2")
    expect(options.get_by_role("radio", name="Shipping")).to_be_checked()
    panel.get_by_role("button", name="Save").click()
    expect(panel.locator("[data-definition]")).to_have_count(0)
    stored = Assessment.objects.get(name="topic")
    assert (stored.value, stored.definition_version) == ("shipping", 1)
