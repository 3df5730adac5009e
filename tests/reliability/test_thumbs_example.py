"""The README's thumbs example (static/examples/thumbs.html) in Debian's chromium, under our CSP:
an end user's click is stored as feedback with nothing but the token."""
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

from ..factories import make_api_key, make_trace

# Playwright's sync API runs an event loop in the test thread; the ORM must still be usable.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
pytestmark = [pytest.mark.browser, pytest.mark.skipif(not shutil.which(CHROMIUM), reason="needs Debian chromium")]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]}


ORIGIN = "http://testserver"


def serve_in_process(page):
    """Answer every request chromium makes to ORIGIN in-process: static files from the finders
    (with the production CSP, which the middleware adds in production), everything else through
    Django's test client. Chromium's side (CSP enforcement, fetch, CORS, the widget) is real; no
    server thread is needed, so the test database is the test's own."""
    client = Client()

    def handle(route):
        request = route.request
        path = urlsplit(request.url).path
        if path.startswith("/static/"):
            found = finders.find(path.removeprefix("/static/"))
            if found is None:
                route.fulfill(status=404, body="not found")
                return
            kind = mimetypes.guess_type(found)[0] or "application/octet-stream"
            route.fulfill(status=200, body=Path(found).read_bytes(),
                          headers={"Content-Type": kind, "Content-Security-Policy": django_settings.FEEDBACKHUB_CSP})
            return
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("origin", "accept", "content-type")}
        response = client.generic(request.method, request.url.removeprefix(ORIGIN), data=request.post_data_buffer or b"",
                                  content_type=headers.pop("content-type", "application/octet-stream"), headers=headers)
        route.fulfill(status=response.status_code, headers=dict(response.items()), body=response.content)

    page.route(f"{ORIGIN}/**", handle)


@pytest.mark.django_db(transaction=True)  # chromium's handlers run in another thread
def test_thumbs_widget_posts_end_user_feedback_under_csp(experiment, page):
    trace = make_trace(experiment)
    api_key, _ = make_api_key(experiment)
    token = public_api.issue_token(trace=trace, actor=Actor.for_key(api_key), names=["user_satisfaction"],
                                   value_types=["boolean"])["token"]
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
