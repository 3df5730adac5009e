"""End-user feedback tokens are tied to their issuer and count their uses in their own record
(issue 12 item 3 and the spent-token low item). Both databases."""

import pytest
from rest_framework.test import APIClient

from assessments import services
from assessments.feedback_tokens import public_idempotency_key
from assessments.models import Assessment, FeedbackToken
from traces.access import Actor
from traces.models import Membership

from ..factories import make_feedback
from .test_public_feedback import PUBLIC_URL, issue, post_public, token_url

pytestmark = pytest.mark.django_db
MODERATOR = Actor.for_system("moderation")


@pytest.fixture
def browser():
    return APIClient()


def session_token(client, user, trace, **body) -> str:
    """A 30-day, 100-use token minted through the user's session, as in the issue."""
    client.force_login(user)
    response = client.post(
        token_url(trace), {"max_uses": 100, "expires_in": 30 * 24 * 3600, **body}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    client.logout()
    return response.json()["token"]


def refused(response, words: str) -> bool:
    return response.status_code == 403 and words in response.json()["token"][0]


def test_demoted_and_deactivated_reviewers_tokens_die(client, browser, reviewer, trace):
    token = session_token(client, reviewer, trace)
    assert post_public(browser, token).status_code == 201
    Membership.objects.filter(user=reviewer).update(role=Membership.Role.VIEWER)
    assert refused(post_public(browser, token), "may no longer collect feedback")
    Membership.objects.filter(user=reviewer).update(role=Membership.Role.REVIEWER)
    reviewer.is_active = False
    reviewer.save(update_fields=["is_active"])
    assert refused(post_public(browser, token), "was deactivated")
    assert Assessment.objects.count() == 1


def test_a_token_dies_when_its_issuer_leaves_the_experiment_or_is_deleted(client, browser, reviewer, owner, trace):
    token, owners_token = session_token(client, reviewer, trace), session_token(client, owner, trace)
    Membership.objects.filter(user=reviewer).delete()
    assert refused(post_public(browser, token), "may no longer collect feedback")
    owner.delete()
    assert refused(post_public(browser, owners_token), "was deactivated")
    assert not Assessment.objects.exists()


def test_staff_tokens_die_with_the_staff_flag(client, browser, staff, trace):
    token = session_token(client, staff, trace)
    assert post_public(browser, token).status_code == 201
    staff.is_staff = False
    staff.save(update_fields=["is_staff"])
    assert refused(post_public(browser, token), "may no longer collect feedback")


def test_a_key_token_dies_when_the_key_no_longer_covers_the_experiment(api_client, api_key, browser, trace):
    issued = issue(api_client, trace, max_uses=5)
    assert post_public(browser, issued["token"]).status_code == 201
    api_key[0].experiments.clear()
    assert refused(post_public(browser, issued["token"]), "no longer covers its experiment")


def test_a_spent_single_use_token_stays_spent_after_its_feedback_is_deleted(api_client, browser, trace):
    """Issue 12 item 5: the use was counted by the feedback's idempotency key, which went with it."""
    issued = issue(api_client, trace)
    created = post_public(browser, issued["token"])
    assert created.status_code == 201
    services.delete_assessment(
        assessment=Assessment.objects.get(pk=created.json()["assessment_id"]), actor=MODERATOR, channel="admin"
    )
    again = post_public(browser, issued["token"])
    assert again.status_code == 409 and "already used 1 time" in again.json()["token"][0]
    assert not Assessment.objects.exists()
    assert FeedbackToken.objects.get().uses == 1


def test_uses_are_counted_in_the_tokens_record_across_deletions(api_client, browser, trace):
    issued = issue(api_client, trace, max_uses=3)
    first = post_public(browser, issued["token"]).json()
    Assessment.objects.filter(pk=first["assessment_id"]).delete()  # by hand, as an admin might
    assert post_public(browser, issued["token"]).json()["uses_left"] == 1
    assert post_public(browser, issued["token"]).json()["uses_left"] == 0
    assert post_public(browser, issued["token"]).status_code == 409
    record = FeedbackToken.objects.get()
    assert (record.uses, record.max_uses, record.trace_id) == (3, 3, trace.trace_id)


def test_a_refused_write_gives_the_use_back(api_client, browser, trace):
    issued = issue(api_client, trace)
    body = '{"token": "%s", "name": "user_satisfaction", "value": "a\\u0000"}' % issued["token"]
    assert browser.post(PUBLIC_URL, body, content_type="application/json").status_code == 400
    assert post_public(browser, issued["token"]).status_code == 201


def test_a_token_used_before_uses_were_counted_keeps_its_spent_uses(api_client, browser, trace):
    """Tokens from before FeedbackToken: their first row starts from the feedback they wrote."""
    from django.core import signing

    from assessments.public_api import TOKEN_SALT

    issued = issue(api_client, trace, max_uses=2)
    claims = signing.loads(issued["token"], salt=TOKEN_SALT)
    make_feedback(trace, idempotency_key=public_idempotency_key(claims, 2), source_id="end-user:x")
    response = post_public(browser, issued["token"])
    assert response.status_code == 409  # use 2 was taken by the old scheme, so both are spent
    assert FeedbackToken.objects.get().uses == 2
