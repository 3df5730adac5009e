"""In Debian's chromium, under the production CSP: the README's thumbs example
(static/examples/thumbs.html) stores an end user's click with nothing but the token, and the
reviewer's pages run without a single CSP violation and show that end user's feedback."""

import mimetypes
import os
import shutil
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from django.conf import settings as django_settings
from django.contrib.staticfiles import finders
from django.test import Client

from assessments import public_api
from assessments.models import Assessment
from traces.access import Actor

from ..factories import make_api_key, make_feedback, make_trace

# Playwright's sync API runs an event loop in the test thread; the ORM must still be usable.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
pytestmark = [pytest.mark.browser, pytest.mark.skipif(not shutil.which(CHROMIUM), reason="needs Debian chromium")]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
    }


ORIGIN = "http://testserver"


def serve_in_process(page, client=None):
    """Answer every request chromium makes to ORIGIN in-process: static files from the finders
    (with the production CSP, which the middleware adds in production), everything else through
    Django's test client. Chromium's side (CSP enforcement, fetch, CORS, the widget) is real; no
    server thread is needed, so the test database is the test's own."""
    client = client or Client()

    def handle(route):
        request = route.request
        path = urlsplit(request.url).path
        if path.startswith("/static/"):
            found = finders.find(path.removeprefix("/static/"))
            if found is None:
                route.fulfill(status=404, body="not found")
                return
            kind = mimetypes.guess_type(found)[0] or "application/octet-stream"
            route.fulfill(
                status=200,
                body=Path(found).read_bytes(),
                headers={"Content-Type": kind, "Content-Security-Policy": django_settings.FEEDBACKHUB_CSP},
            )
            return
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("origin", "accept", "content-type")}
        response = client.generic(
            request.method,
            request.url.removeprefix(ORIGIN),
            data=request.post_data_buffer or b"",
            content_type=headers.pop("content-type", "application/octet-stream"),
            headers=headers,
        )
        route.fulfill(status=response.status_code, headers=dict(response.items()), body=response.content)

    page.route(f"{ORIGIN}/**", handle)


@pytest.mark.django_db(transaction=True)  # chromium's handlers run in another thread
def test_thumbs_widget_posts_end_user_feedback_under_csp(experiment, page):
    trace = make_trace(experiment)
    api_key, _ = make_api_key(experiment)
    token = public_api.issue_token(
        trace=trace, actor=Actor.for_key(api_key), names=["user_satisfaction"], value_types=["boolean"]
    )["token"]
    console = []
    page.on("console", lambda message: console.append(message.text))
    serve_in_process(page)

    page.goto(f"{ORIGIN}/static/examples/thumbs.html?token={quote(token)}")
    page.get_by_role("button", name="Yes, helpful").click()
    page.get_by_text("Thanks for your feedback!").wait_for(timeout=10_000)

    feedback = Assessment.objects.get()
    assert (feedback.trace_id, feedback.name, feedback.value) == (trace.trace_id, "user_satisfaction", True)
    assert feedback.source_id.startswith("end-user:")
    assert page.get_by_role("button", name="No, not helpful").is_disabled()
    assert not [text for text in console if "Content Security Policy" in text], console


@pytest.mark.django_db(transaction=True)  # chromium's handlers run in another thread
def test_thumbs_widget_explains_a_refused_token(page):
    serve_in_process(page)
    page.goto(f"{ORIGIN}/static/examples/thumbs.html?token=forged")
    page.get_by_role("button", name="No, not helpful").click()
    page.get_by_text("token:").wait_for(timeout=10_000)
    assert not Assessment.objects.exists()


@pytest.mark.django_db(transaction=True)  # chromium's handlers run in another thread
def test_reviewer_pages_run_under_csp_and_show_end_user_feedback(experiment, reviewer, page):
    trace = make_trace(experiment, spans=3)
    make_feedback(trace, name="relevance", value=0.8, source_type="LLM_JUDGE", source_id="judge")
    api_key, _ = make_api_key(experiment)
    claims = public_api.read_token(public_api.issue_token(trace=trace, actor=Actor.for_key(api_key))["token"])
    public_api.log_public_feedback(claims=claims, name="user_satisfaction", value=False, rationale="wrong answer")
    client = Client()
    client.force_login(reviewer)
    violations = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    serve_in_process(page, client)

    for path in ("/", experiment.get_absolute_url(), trace.get_absolute_url()):
        response = page.goto(f"{ORIGIN}{path}")
        assert response.status == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"], path
        page.wait_for_load_state("networkidle")
    page.get_by_text(f"end-user:{claims['u']}").first.wait_for(timeout=10_000)

    assert violations == []
