"""A reviewer opens insights, narrows by a filter, clicks the thumbs-down bar and lands on the
trace list filtered to exactly those traces."""

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from assessments.definitions.demo import define_demo
from assessments.insights.demo import add_insights_demo
from traces.access import Actor
from traces.models import Membership

from ..factories import make_experiment
from .test_review_flow import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def month(live):
    experiment = make_experiment("rag-demo")
    system = Actor.for_system("test")
    define_demo(experiment, system)
    add_insights_demo(experiment, system)
    alice = get_user_model().objects.create_user("alice", password="alice-pass-123")
    Membership.objects.create(user=alice, experiment=experiment, role="reviewer")
    return experiment


def test_thumbs_down_bar_opens_the_matching_trace_list(watched, live, month, shots):
    page = watched
    sign_in(page, live)
    page.goto(f"{live}/experiments/{month.pk}/traces/")
    page.get_by_role("link", name="Insights").click()
    expect(page.get_by_role("heading", name=re.compile("Insights"))).to_be_visible()
    card = page.locator(".insight-card[data-name=user_satisfaction]")
    expect(card).to_be_visible()
    page.get_by_role("link", name="30d").click()
    expect(page.locator(".trend[data-name=user_satisfaction] circle").first).to_be_visible()
    page.screenshot(path=str(shots / "insights-30d.png"), full_page=True)

    page.get_by_label("Filter").fill("metadata.topic = 'deployment'")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"filter=metadata.topic"))
    bar = card.locator("a.ins-bar-link", has_text="false")
    expect(bar).to_be_visible()
    expected = int(bar.get_attribute("data-traces"))
    assert 0 < expected <= 50
    page.screenshot(path=str(shots / "insights-filtered.png"), full_page=True)
    bar.click()

    expect(page).to_have_url(re.compile(r"/experiments/\d+/traces/\?filter="))
    text = parse_qs(urlsplit(page.url).query)["filter"][0]
    assert "metadata.topic = 'deployment'" in text and "feedback.user_satisfaction = false" in text
    expect(page.locator(".trace-row")).to_have_count(expected)
    page.screenshot(path=str(shots / "insights-thumbs-down-list.png"))
