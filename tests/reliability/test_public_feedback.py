"""End-user feedback without secrets: signed tokens, the public endpoint, CORS, scopes and limits."""

import time

import pytest
from django.core import signing
from rest_framework.test import APIClient

from assessments import public_api
from assessments.models import Assessment, Revision
from traces import services as trace_services
from traces.access import Actor

from ..clock import fresh_minute
from ..factories import make_trace

pytestmark = pytest.mark.django_db

PUBLIC_URL = "/api/v1/public/feedback"


def token_url(trace):
    return f"/api/v1/traces/{trace.trace_id}/feedback-tokens"


def issue(api_client, trace, **body):
    response = api_client.post(token_url(trace), body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def browser():
    """An anonymous client, as a browser on the app's page is."""
    return APIClient()


def post_public(client, token, name="user_satisfaction", value=True, **extra):
    headers = extra.pop("headers", {})
    return client.post(
        PUBLIC_URL, {"token": token, "name": name, "value": value, **extra}, format="json", headers=headers
    )


def test_token_then_thumbs_up_is_stored_as_end_user_feedback(api_client, browser, trace):
    issued = issue(api_client, trace, names=["user_satisfaction"], value_types=["boolean"], end_user="customer-42")
    assert issued["trace_id"] == trace.trace_id and issued["max_uses"] == 1
    assert issued["endpoint"].endswith(PUBLIC_URL)
    assert "customer-42" not in issued["token"] and issued["end_user"] != "customer-42"

    response = post_public(browser, issued["token"], rationale="great answer")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["end_user"] == f"end-user:{issued['end_user']}" and body["uses_left"] == 0
    feedback = Assessment.objects.get(pk=body["assessment_id"])
    assert (feedback.trace_id, feedback.name, feedback.value, feedback.rationale) == (
        trace.trace_id,
        "user_satisfaction",
        True,
        "great answer",
    )
    assert feedback.source_type == "HUMAN" and feedback.source_id == f"end-user:{issued['end_user']}"
    assert feedback.created_by is None and feedback.created_by_key is None
    [revision] = Revision.objects.filter(assessment_id=feedback.pk)
    assert (revision.action, revision.channel, revision.actor_label) == (
        "create",
        "public",
        f"end-user:{issued['end_user']}",
    )


def test_end_user_feedback_shows_in_the_reviewers_trace(api_client, browser, trace):
    issued = issue(api_client, trace)
    post_public(browser, issued["token"], value=False)
    detail = api_client.get(f"/api/v1/traces/{trace.trace_id}").json()
    [feedback] = detail["assessments"]
    assert feedback["value"] is False and feedback["source"]["source_id"] == f"end-user:{issued['end_user']}"


def test_same_end_user_gets_the_same_pseudonym_per_experiment(api_client, trace, experiment):
    other_trace = make_trace(experiment)
    first = issue(api_client, trace, end_user="customer-42")["end_user"]
    assert issue(api_client, other_trace, end_user="customer-42")["end_user"] == first
    assert issue(api_client, trace, end_user="customer-43")["end_user"] != first
    assert issue(api_client, trace)["end_user"] != issue(api_client, trace)["end_user"]  # anonymous: fresh each time


def test_public_endpoint_needs_no_csrf_cookie(api_client, trace):
    issued = issue(api_client, trace)
    client = APIClient(enforce_csrf_checks=True)
    assert post_public(client, issued["token"]).status_code == 201


def test_tampered_token_is_refused_and_stores_nothing(api_client, browser, trace, experiment):
    issued = issue(api_client, trace, names=["user_satisfaction"])
    other = make_trace(experiment)
    claims = signing.loads(issued["token"], salt=public_api.TOKEN_SALT)
    forged = signing.dumps({**claims, "t": other.trace_id, "n": None}, salt=public_api.TOKEN_SALT, key="guessed-key")
    flipped = issued["token"][:-3] + ("AAA" if not issued["token"].endswith("AAA") else "BBB")
    for token in (forged, flipped, "not-a-token", issued["token"] + "x"):
        response = post_public(browser, token)
        assert response.status_code == 403, token
        assert "token" in response.json()
    assert not Assessment.objects.exists()


def test_expired_token_is_refused(api_client, browser, trace, monkeypatch):
    issued = issue(api_client, trace, expires_in=60)
    later = time.time() + 61
    monkeypatch.setattr(public_api.time, "time", lambda: later)
    response = post_public(browser, issued["token"])
    assert response.status_code == 403 and "expired" in response.json()["token"][0]
    assert not Assessment.objects.exists()


def test_token_older_than_the_global_maximum_is_refused(api_client, browser, trace, settings):
    issued = issue(api_client, trace)
    settings.FEEDBACKHUB_PUBLIC_TOKEN_MAX_SECONDS = 0
    time.sleep(1.1)
    assert post_public(browser, issued["token"]).status_code == 403


@pytest.mark.parametrize(
    "scope, body, field",
    [
        ({"names": ["user_satisfaction"]}, {"name": "helpfulness", "value": True}, "name"),
        ({"value_types": ["boolean"]}, {"name": "rating", "value": 4}, "value"),
        ({"value_types": ["number"], "value_range": {"min": 1, "max": 5}}, {"name": "rating", "value": 6}, "value"),
        ({"value_types": ["number"], "value_range": {"min": 1, "max": 5}}, {"name": "rating", "value": 0.5}, "value"),
    ],
)
def test_out_of_scope_feedback_is_refused(api_client, browser, trace, scope, body, field):
    issued = issue(api_client, trace, **scope)
    response = post_public(browser, issued["token"], **body)
    assert response.status_code == 403 and field in response.json()
    assert not Assessment.objects.exists()


@pytest.mark.parametrize(
    "body, field",
    [
        ({"value": [1, 2]}, "value"),
        ({"value": {"a": 1}}, "value"),
        ({"value": None}, "value"),
        ({"value": "x" * 2001}, "value"),
        ({"name": ""}, "name"),
        ({"name": "n" * 251}, "name"),
        ({"rationale": "r" * 2001}, "rationale"),
    ],
)
def test_malformed_public_feedback_is_a_400_naming_the_field(api_client, browser, trace, body, field):
    issued = issue(api_client, trace)
    payload = {"name": "user_satisfaction", "value": True, **body}
    response = post_public(browser, issued["token"], **payload)
    assert response.status_code == 400 and field in response.json()
    assert not Assessment.objects.exists()


def test_rating_within_range_is_accepted(api_client, browser, trace):
    issued = issue(api_client, trace, names=["rating"], value_types=["number"], value_range={"min": 1, "max": 5})
    response = post_public(browser, issued["token"], name="rating", value=5)
    assert response.status_code == 201 and Assessment.objects.get().value == 5


def test_token_is_used_at_most_max_uses_times(api_client, browser, trace):
    issued = issue(api_client, trace, max_uses=2)
    assert post_public(browser, issued["token"], value=True).json()["uses_left"] == 1
    assert post_public(browser, issued["token"], value=False).json()["uses_left"] == 0
    replay = post_public(browser, issued["token"], value=False)
    assert replay.status_code == 409 and "already used 2 time" in replay.json()["token"][0]
    assert Assessment.objects.count() == 2


def test_token_of_a_revoked_key_dies_with_it(api_client, api_key, browser, trace):
    issued = issue(api_client, trace)
    trace_services.revoke_api_key(api_key=api_key[0], actor=Actor.for_system("tests"))
    response = post_public(browser, issued["token"])
    assert response.status_code == 403 and "revoked" in response.json()["token"][0]


def test_token_for_a_deleted_trace_is_a_404(api_client, browser, trace):
    issued = issue(api_client, trace)
    trace.delete()
    assert post_public(browser, issued["token"]).status_code == 404


def test_reviewer_session_may_issue_tokens_viewer_and_anonymous_may_not(client, reviewer, viewer, trace):
    client.force_login(reviewer)
    assert client.post(token_url(trace), {}, content_type="application/json").status_code == 201
    client.force_login(viewer)
    assert client.post(token_url(trace), {}, content_type="application/json").status_code == 403
    assert APIClient().post(token_url(trace), {}, format="json").status_code in (401, 403)


def test_token_for_an_invisible_trace_is_a_404(api_client, other_experiment):
    hidden = make_trace(other_experiment)
    assert api_client.post(token_url(hidden), {}, format="json").status_code == 404


@pytest.mark.parametrize(
    "body, field",
    [
        ({"max_uses": 0}, "max_uses"),
        ({"max_uses": 101}, "max_uses"),
        ({"expires_in": 5}, "expires_in"),
        ({"expires_in": 10**9}, "expires_in"),
        ({"value_types": ["list"]}, "value_types"),
        ({"names": []}, "names"),
        ({"names": ["x"] * 21}, "names"),
        ({"value_range": {"min": 5, "max": 1}}, "value_range"),
        ({"end_user": "u" * 251}, "end_user"),
    ],
)
def test_bad_token_requests_are_a_400_naming_the_field(api_client, trace, body, field):
    response = api_client.post(token_url(trace), body, format="json")
    assert response.status_code == 400 and field in response.json(), response.content


# --- CORS --------------------------------------------------------------------------------------


@pytest.fixture
def cors(settings):
    settings.FEEDBACKHUB_CORS_ORIGINS = ["https://shop.example"]


def test_preflight_from_an_allowed_origin(browser, cors):
    response = browser.options(
        PUBLIC_URL,
        headers={
            "Origin": "https://shop.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "POST" in response["Access-Control-Allow-Methods"]
    assert "content-type" in response["Access-Control-Allow-Headers"].lower()
    assert "Origin" in response["Vary"]


def test_preflight_from_another_origin_gets_no_cors_headers(browser, cors):
    response = browser.options(
        PUBLIC_URL, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response


def test_post_from_an_allowed_origin_carries_cors_headers(api_client, browser, trace, cors):
    issued = issue(api_client, trace)
    response = post_public(browser, issued["token"], headers={"Origin": "https://shop.example"})
    assert response.status_code == 201 and response["Access-Control-Allow-Origin"] == "https://shop.example"


def test_post_from_another_origin_is_refused_and_stores_nothing(api_client, browser, trace, cors):
    """Browsers send simple cross-origin POSTs without a preflight: the server itself must refuse them."""
    issued = issue(api_client, trace)
    response = post_public(browser, issued["token"], headers={"Origin": "https://evil.example"})
    assert response.status_code == 403 and "Access-Control-Allow-Origin" not in response
    assert not Assessment.objects.exists()


def test_post_from_this_site_itself_is_allowed(api_client, browser, trace, cors):
    issued = issue(api_client, trace)
    assert post_public(browser, issued["token"], headers={"Origin": "http://testserver"}).status_code == 201


# --- rate limits -------------------------------------------------------------------------------


def test_per_token_rate_limit(api_client, browser, trace, settings):
    settings.FEEDBACKHUB_RATE_LIMITS = {**settings.FEEDBACKHUB_RATE_LIMITS, "public_token": "2/minute"}
    fresh_minute()
    issued = issue(api_client, trace, max_uses=5)
    assert [post_public(browser, issued["token"]).status_code for _ in range(2)] == [201, 201]
    limited = post_public(browser, issued["token"])
    assert limited.status_code == 429 and 1 <= int(limited["Retry-After"]) <= 60
    assert Assessment.objects.count() == 2
    other = issue(api_client, trace)
    assert post_public(browser, other["token"]).status_code == 201  # another token is not affected


def test_per_address_rate_limit(api_client, trace, settings):
    settings.FEEDBACKHUB_RATE_LIMITS = {**settings.FEEDBACKHUB_RATE_LIMITS, "public_ip": "3/minute"}
    tokens = [issue(api_client, trace)["token"] for _ in range(4)]
    first, second = APIClient(REMOTE_ADDR="203.0.113.7"), APIClient(REMOTE_ADDR="203.0.113.8")
    fresh_minute()
    assert [post_public(first, token).status_code for token in tokens[:3]] == [201, 201, 201]
    limited = post_public(first, tokens[3])
    assert limited.status_code == 429 and "Retry-After" in limited
    assert post_public(second, tokens[3]).status_code == 201
