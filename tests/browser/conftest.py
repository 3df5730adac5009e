"""Playwright + Debian's chromium for the reviewer pages.

Never `playwright install`: the browser is /usr/bin/chromium (apt-get install chromium), or
$FEEDBACKHUB_CHROMIUM.
Without it the tests skip, unless FEEDBACKHUB_REQUIRE_BROWSER=1 (CI), where they fail.
Screenshots go to $FEEDBACKHUB_SCREENSHOTS (default: /tmp/feedbackhub-screenshots; not under
test-results/, which pytest-playwright empties at the start of every session).
"""

import os
import shutil
from pathlib import Path

import pytest

from ..live_server import fh_live_server, live  # noqa: F401 (fixtures)

# Playwright's sync API keeps an asyncio loop running in the test thread; the ORM must still work.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("FEEDBACKHUB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright's launch options plus Debian's chromium."""
    if not shutil.which(CHROMIUM):
        message = f"{CHROMIUM} is missing (apt-get install -y chromium)"
        if os.environ.get("FEEDBACKHUB_REQUIRE_BROWSER") == "1":
            pytest.fail(message + " and FEEDBACKHUB_REQUIRE_BROWSER=1", pytrace=False)
        pytest.skip(message)
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1480, "height": 900}, "locale": "en-US"}


@pytest.fixture(scope="session")
def shots() -> Path:
    folder = Path(os.environ.get("FEEDBACKHUB_SCREENSHOTS") or "/tmp/feedbackhub-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def watched(page, live):  # noqa: F811
    """The page, failing the test on JavaScript errors, CSP violations, dialogs nobody expected
    (an XSS alert would be one) and any request that leaves the live server."""
    problems = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}")
            if message.type == "error"
            and "404" not in message.text
            and "403" not in message.text
            and "409" not in message.text
            else None
        ),
    )

    def only_local(route):
        if route.request.url.startswith(live):
            return route.continue_()
        problems.append(f"external request: {route.request.url}")
        return route.abort()

    page.route("**/*", only_local)
    page.problems = problems
    yield page
    assert problems == []
