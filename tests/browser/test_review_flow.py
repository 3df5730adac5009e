"""A reviewer's whole loop in Debian's chromium: sign in, filter, open a trace, read a span,
rate, edit, override a judge, delete, read the history — asserting on the page and the database."""

import re
import time
from datetime import datetime, timedelta, timezone

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from assessments.models import Assessment, Revision
from traces.models import Membership

from ..factories import make_experiment, make_feedback, make_trace

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

XSS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)


def rag_spans(question: str, answer: str, n: int, *, failing_tool: bool = False) -> list[dict]:
    """A RAG request: chain → retriever, chat model (a conversation), optionally a failing tool."""
    start = int((T0 + timedelta(minutes=n)).timestamp() * 1e9)
    ms = 1_000_000
    sid = lambda k: f"{n:08x}{k:08x}"  # noqa: E731
    spans = [
        {
            "span_id": sid(1),
            "parent_span_id": None,
            "name": "answer_question",
            "span_type": "CHAIN",
            "start_time_ns": start,
            "end_time_ns": start + 900 * ms,
            "status_code": "OK",
            "inputs": {"question": question},
            "outputs": answer,
        },
        {
            "span_id": sid(2),
            "parent_span_id": sid(1),
            "name": "retrieve_docs",
            "span_type": "RETRIEVER",
            "start_time_ns": start + 5 * ms,
            "end_time_ns": start + 120 * ms,
            "status_code": "OK",
            "inputs": {"query": question, "top_k": 2},
            "outputs": [{"id": "doc-1", "page_content": "MLflow Tracing records inputs and outputs."}],
        },
        {
            "span_id": sid(3),
            "parent_span_id": sid(1),
            "name": "ChatCompletion",
            "span_type": "CHAT_MODEL",
            "start_time_ns": start + 130 * ms,
            "end_time_ns": start + 880 * ms,
            "status_code": "OK",
            "inputs": {
                "model": "gpt-4o-mini",
                "messages": [
                    {"role": "system", "content": "Answer from the context only."},
                    {
                        "role": "user",
                        "content": f"Context: MLflow Tracing records inputs and outputs.\n\nQuestion: {question}",
                    },
                ],
            },
            "outputs": {"choices": [{"message": {"role": "assistant", "content": answer}}]},
            "attributes": {"llm.token_count.total": 412},
        },
    ]
    if failing_tool:
        spans.append(
            {
                "span_id": sid(4),
                "parent_span_id": sid(1),
                "name": "lookup_release",
                "span_type": "TOOL",
                "start_time_ns": start + 121 * ms,
                "end_time_ns": start + 128 * ms,
                "status_code": "ERROR",
                "status_message": "TimeoutError: release API did not answer",
                "events": [
                    {
                        "name": "exception",
                        "timestamp_ns": start + 127 * ms,
                        "attributes": {
                            "exception.type": "TimeoutError",
                            "exception.message": "release API did not answer",
                            "exception.stacktrace": 'Traceback (most recent call last):\n  File "tools.py", line 12\nTimeoutError',
                        },
                    }
                ],
            }
        )
    return spans


@pytest.fixture
def demo(live):
    """rag-demo with alice (reviewer), five traces, a judge score and an end user's thumb."""
    experiment = make_experiment("rag-demo", description="A RAG assistant answering questions about MLflow.")
    alice = get_user_model().objects.create_user("alice", password="alice-pass-123")
    Membership.objects.create(user=alice, experiment=experiment, role="reviewer")
    questions = [
        ("answer_question", "What is MLflow Tracing?", "It records every step of a GenAI app."),
        ("answer_question", "How do I log feedback?", "Call mlflow.log_feedback with a name and a value."),
        ("summarize_doc", "Summarize the tracing docs", "Tracing records spans."),
        ("answer_question", "Which MLflow version is latest?", "I could not check the release API."),
        ("summarize_doc", "Summarize the evaluation docs", "Evaluation scores traces."),
    ]
    traces = []
    for n, (name, question, answer) in enumerate(questions):
        traces.append(
            make_trace(
                experiment,
                spans=rag_spans(question, answer, n, failing_tool=n == 3),
                name=name,
                request_time=T0 + timedelta(minutes=n),
                tags={"env": "demo"},
                metadata={"mlflow.trace.user": f"user_{n}", "app_version": "1.4.2"},
            )
        )
    target = traces[1]
    judge = make_feedback(
        target,
        name="relevance",
        value=0.4,
        source_type="LLM_JUDGE",
        source_id="openai:/gpt-4o-mini",
        rationale="The answer ignores the question.",
    )
    make_feedback(target, value=False, source_id="user_123")
    make_feedback(traces[0], value=True, source_id="user_456")
    return {"experiment": experiment, "traces": traces, "target": target, "judge": judge, "live": live}


def sign_in(page, live, username="alice", password="alice-pass-123"):
    page.goto(live + "/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Experiments")).to_be_visible()


def test_review_a_trace_from_list_to_history(watched, demo, shots):
    page, live, target, judge = watched, demo["live"], demo["target"], demo["judge"]

    sign_in(page, live)
    card = page.get_by_role("listitem").filter(has_text="rag-demo")
    expect(card).to_contain_text("Traces5")  # dt + dd text
    page.screenshot(path=str(shots / "home.png"))

    # --- the list: filter (with a mistake first), keep the URL in sync
    page.get_by_role("link", name="rag-demo").click()
    expect(page.locator("#trace-table tbody tr")).to_have_count(5)
    # htmx binds the filter form at DOMContentLoaded; the rows are in view a moment before (CI
    # once pressed Enter in that moment: a full-page GET whose 400 the console reported)
    page.wait_for_load_state()
    page.get_by_label("Filter", exact=True).fill("trace.name = 'answer_question' AND")
    page.get_by_label("Filter", exact=True).press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("This filter does not parse")
    page.get_by_label("Filter", exact=True).fill("trace.name = 'answer_question'")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#trace-table tbody tr")).to_have_count(3)
    expect(page).to_have_url(re.compile(r"filter=trace\.name"))
    page.get_by_label("Sort").select_option("oldest")
    expect(page).to_have_url(re.compile(r"sort=oldest"))
    expect(page.locator("#trace-table tbody tr").first).to_contain_text("What is MLflow Tracing?")
    page.screenshot(path=str(shots / "trace-list.png"), full_page=True)

    # reload keeps the same list; j / j / Enter opens the second trace of it
    page.reload()
    expect(page.locator("#trace-table tbody tr")).to_have_count(3)
    expect(page.get_by_label("Filter", exact=True)).to_have_value("trace.name = 'answer_question'")
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(page.locator("#trace-table tr.is-current")).to_contain_text("How do I log feedback?")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/traces/{target.trace_id}/\?filter="))
    expect(page.get_by_role("heading", level=1)).to_have_text("answer_question")

    # --- select a span: its conversation loads into the middle column, the URL remembers it
    page.locator("#span-tree").get_by_role("link", name=re.compile("ChatCompletion")).click()
    detail = page.locator("#span-detail")
    expect(detail.get_by_role("heading", name="ChatCompletion")).to_be_visible()
    expect(detail.locator(".msg-user")).to_contain_text("Question: How do I log feedback?")
    expect(page).to_have_url(re.compile(r"span=00000001"))
    detail.get_by_role("tab", name="Outputs").click()
    expect(detail.locator(".msg-assistant")).to_contain_text("mlflow.log_feedback")
    # keyboard in the tree: ↑ goes to the retriever, Enter shows it
    page.locator("#span-tree").get_by_role("link", name=re.compile("ChatCompletion")).focus()
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Enter")
    expect(detail.get_by_role("heading", name="retrieve_docs")).to_be_visible()

    # --- add a thumbs-up with a rationale, attached to the selected span
    panel = page.locator("#assessment-panel")
    panel.get_by_role("button", name="Add feedback").click()
    expect(panel.get_by_label("Name")).to_have_value("reviewer_verdict")  # the experiment's verdict
    panel.get_by_role("radio", name="Thumbs up").check()
    panel.get_by_label("Rationale").fill("Correct and cites the docs.")
    panel.get_by_label("Attach to the selected span").check()
    panel.get_by_role("button", name="Save").click()
    expect(panel.get_by_role("status")).to_contain_text("Added feedback")
    mine = Assessment.objects.get(trace=target, source_id="alice")
    assert (mine.name, mine.value, mine.rationale, mine.source_type) == (
        "reviewer_verdict",
        True,
        "Correct and cites the docs.",
        "HUMAN",
    )
    assert mine.span_id == "0000000100000002"
    expect(panel.locator(f"#a-{mine.assessment_id}")).to_contain_text("Correct and cites the docs.")
    expect(page.locator("#trace-summary")).to_contain_text("1")  # the header chips refreshed themselves

    # --- edit it in place
    panel.locator(f"#a-{mine.assessment_id}").hover()
    panel.get_by_role("button", name="Edit reviewer_verdict").click()
    panel.get_by_role("radio", name="Thumbs down").check()
    panel.get_by_label("Rationale").fill("On second look it misses the span_id argument.")
    panel.get_by_role("button", name="Save").click()
    expect(panel.get_by_role("status")).to_contain_text("Saved")
    mine.refresh_from_db()
    assert (mine.value, mine.rationale, mine.version) == (False, "On second look it misses the span_id argument.", 2)

    # --- override the judge's relevance score
    panel.locator(f"#a-{judge.assessment_id}").hover()
    panel.get_by_role("button", name="Override relevance").click()
    expect(panel.get_by_label("Number value")).to_have_value("0.4")
    panel.get_by_label("Number value").fill("0.9")
    panel.get_by_label("Rationale").fill("It answers exactly what was asked.")
    panel.get_by_role("button", name="Save override").click()
    expect(panel.get_by_role("status")).to_contain_text("Overrode")
    judge.refresh_from_db()
    correction = Assessment.objects.get(overrides=judge)
    assert judge.valid is False and (correction.value, correction.source_id) == (0.9, "alice")
    expect(panel.locator(f"#a-{judge.assessment_id}")).to_have_class(re.compile("is-overridden"))
    expect(panel.locator(f"#a-{judge.assessment_id} .replaced")).to_contain_text("overridden by")

    # --- open the judge's history: the override is in it, before → after
    panel.locator(f"#a-{judge.assessment_id}").hover()
    panel.get_by_role("button", name="History of relevance").first.click()
    history = panel.locator(f"#history-{judge.assessment_id}")
    expect(history).to_contain_text("overridden by")
    expect(history.locator(".rev-create")).to_contain_text("system:tests created")
    expect(history.locator(".rev-override del").first).to_have_text("0.4")
    expect(history.locator(".rev-override ins").first).to_have_text("0.9")
    page.screenshot(path=str(shots / "trace-detail.png"))

    # --- delete my thumb after confirming
    page.once("dialog", lambda dialog: dialog.accept())
    panel.locator(f"#a-{mine.assessment_id}").hover()
    panel.get_by_role("button", name="Delete reviewer_verdict").click()
    expect(panel.get_by_role("status")).to_contain_text("Deleted")
    assert not Assessment.objects.filter(pk=mine.pk).exists()
    assert Revision.objects.filter(assessment_id=mine.assessment_id).count() == 3  # create, update, delete

    # --- keyboard: u rates, ? shows the shortcuts, j goes to the next trace of the list
    page.locator("body").click(position={"x": 5, "y": 200})
    page.keyboard.press("u")
    expect(panel.get_by_role("button", name="Thumbs up")).to_have_attribute("aria-pressed", "true")
    assert Assessment.objects.get(trace=target, source_id="alice", name="reviewer_verdict").value is True
    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_hidden()
    page.keyboard.press("j")
    expect(page).to_have_url(re.compile(rf"/traces/{demo['traces'][3].trace_id}/\?filter="))


def test_failed_spans_and_exceptions_are_readable(watched, demo, shots):
    page, live = watched, demo["live"]
    failing = demo["traces"][3]
    sign_in(page, live)
    page.goto(f"{live}/traces/{failing.trace_id}/")
    row = page.locator("#span-tree li.is-error")
    expect(row).to_contain_text("lookup_release")
    expect(row).to_contain_text("failed")
    row.get_by_role("link").click()
    expect(page.locator("#span-detail h2")).to_have_text("lookup_release")
    page.locator("#span-detail").get_by_role("tab", name="Events").click()
    events = page.locator("#tabpanel-events")
    expect(events).to_contain_text("TimeoutError")
    expect(events.get_by_text("Stack trace")).to_be_visible()
    expect(events.locator("pre")).to_be_hidden()  # folded
    events.get_by_text("Stack trace").click()
    expect(events.locator("pre")).to_contain_text("tools.py")
    page.screenshot(path=str(shots / "trace-failed-span.png"))


def test_every_control_has_an_accessible_name(watched, demo):
    page, live = watched, demo["live"]
    sign_in(page, live)
    for path in [
        "/",
        f"/experiments/{demo['experiment'].pk}/traces/",
        f"/traces/{demo['target'].trace_id}/?add=feedback",
    ]:
        page.goto(live + path)
        unnamed = page.evaluate("""() => {
            const named = (el) => (el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')
                || (el.labels && el.labels.length) || el.textContent.trim() || el.title);
            return [...document.querySelectorAll('button, a[href], input:not([type=hidden]), select, textarea, [role=tab]')]
                .filter((el) => el.offsetParent !== null && !named(el)).map((el) => el.outerHTML.slice(0, 120));
        }""")
        assert unnamed == [], (path, unnamed)


def test_nothing_from_a_trace_or_feedback_executes(watched, demo):
    page, live = watched, demo["live"]
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    spans = rag_spans(XSS[0], XSS[1], 40, failing_tool=True)
    spans[2]["inputs"]["messages"].append({"role": XSS[1], "content": XSS[0]})
    spans[3]["events"][0]["attributes"]["exception.message"] = XSS[1]
    trace = make_trace(demo["experiment"], spans=spans, name=XSS[1], tags={XSS[0]: XSS[1]}, metadata={XSS[1]: XSS[0]})
    make_feedback(
        trace,
        name=XSS[1],
        value=XSS[0],
        rationale=XSS[1],
        metadata={XSS[0]: XSS[1]},
        source_type="LLM_JUDGE",
        source_id=XSS[0],
        span_id=spans[1]["span_id"],
    )
    sign_in(page, live)
    page.goto(f"{live}/experiments/{demo['experiment'].pk}/traces/")
    page.goto(f"{live}/traces/{trace.trace_id}/")
    page.locator("details.metadata summary").click()
    for name in ["ChatCompletion", "lookup_release", "retrieve_docs"]:
        page.locator("#span-tree").get_by_role("link", name=re.compile(name)).click()
        expect(page.locator("#span-detail h2")).to_have_text(name)
        for tab in ["Outputs", "Attributes", "Events"]:
            page.locator("#span-detail").get_by_role("tab", name=tab).click()
    panel = page.locator("#assessment-panel")
    panel.get_by_role("button", name="Add feedback").click()
    panel.get_by_label("Name").fill(XSS[0])
    panel.get_by_role("radio", name="Category").check()
    panel.get_by_label("Label").fill(XSS[1])
    panel.get_by_label("Rationale").fill(XSS[0])
    panel.get_by_role("button", name="Save").click()
    expect(panel.get_by_role("status")).to_contain_text("Added feedback")
    expect(panel.get_by_text(XSS[1], exact=True).first).to_be_visible()  # shown as text
    time.sleep(0.3)
    assert dialogs == []
    assert page.evaluate("document.querySelectorAll('img[src=x], #assessment-panel script').length") == 0


def test_a_thousand_span_trace_opens_collapsed_and_stays_usable(watched, demo, shots):
    page, live = watched, demo["live"]
    start = int(T0.timestamp() * 1e9)
    spans = [
        {
            "span_id": f"{n + 1:016x}",
            "parent_span_id": None if n == 0 else f"{(n - 1) // 4 + 1:016x}",
            "name": "agent_run" if n == 0 else f"step_{n}",
            "span_type": ["AGENT", "LLM", "TOOL", "RETRIEVER"][n % 4],
            "start_time_ns": start + n * 200_000,
            "end_time_ns": start + n * 200_000 + 3_000_000,
            "status_code": "ERROR" if n == 777 else "OK",
            "inputs": {"n": n, "text": "x" * 200},
            "outputs": {"ok": True},
        }
        for n in range(1000)
    ]
    trace = make_trace(demo["experiment"], spans=spans, name="agent_run")
    sign_in(page, live)
    began = time.monotonic()
    page.goto(f"{live}/traces/{trace.trace_id}/")
    expect(page.locator("#span-tree li")).to_have_count(1000)
    loaded = time.monotonic() - began
    visible = page.locator("#span-tree li:not([hidden])").count()
    assert visible < 100, visible  # deeper levels start collapsed
    page.get_by_role("button", name="Expand all").click()
    expect(page.locator("#span-tree li:not([hidden])")).to_have_count(1000)
    page.get_by_role("link", name=re.compile(r"^step_777\b")).click()
    expect(page.locator("#span-detail h2")).to_have_text("step_777")
    page.get_by_role("button", name="Collapse all").click()
    expect(page.locator("#span-tree li:not([hidden])")).to_have_count(1)
    page.screenshot(path=str(shots / "trace-1000-spans.png"))
    assert loaded < 10, loaded


def test_dark_theme_and_narrow_screen(browser, demo, shots):
    live = demo["live"]
    context = browser.new_context(color_scheme="dark", viewport={"width": 1480, "height": 900})
    page = context.new_page()
    sign_in(page, live)
    page.goto(f"{live}/traces/{demo['target'].trace_id}/")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background != "rgb(246, 247, 249)"  # not the light theme
    page.screenshot(path=str(shots / "trace-detail-dark.png"))
    page.goto(f"{live}/experiments/{demo['experiment'].pk}/traces/")
    page.screenshot(path=str(shots / "trace-list-dark.png"))
    context.close()
    narrow = browser.new_context(viewport={"width": 420, "height": 900})
    page = narrow.new_page()
    sign_in(page, live)
    page.goto(f"{live}/traces/{demo['target'].trace_id}/")
    feedback_top = page.locator(".pane-feedback").bounding_box()["y"]
    spans_top = page.locator(".pane-spans").bounding_box()["y"]
    assert feedback_top < spans_top  # stacked: header, feedback, tree, detail
    page.screenshot(path=str(shots / "trace-detail-narrow.png"), full_page=True)
    narrow.close()


def test_the_panel_works_without_javascript(browser, demo):
    live, target, judge = demo["live"], demo["target"], demo["judge"]
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1480, "height": 900})
    page = context.new_page()
    sign_in(page, live)
    page.goto(f"{live}/traces/{target.trace_id}/?sort=oldest")
    panel = page.locator("#assessment-panel")
    # a span is selected by following its link; the add form opens as a page
    page.locator("#span-tree").get_by_role("link", name=re.compile("retrieve_docs")).click()
    expect(page.locator("#span-detail h2")).to_have_text("retrieve_docs")
    panel.get_by_role("button", name="Add feedback").click()
    expect(page).to_have_url(re.compile(r"add=feedback"))
    panel.get_by_role("radio", name="Number").check()  # all value inputs are shown without JS
    panel.get_by_label("Name").fill("groundedness")
    panel.get_by_label("Number value").fill("0.7")
    panel.get_by_label("Attach to the selected span").check()
    panel.get_by_role("button", name="Save").click()
    created = Assessment.objects.get(trace=target, name="groundedness")
    assert (created.value, created.span_id, created.source_id) == (0.7, "0000000100000002", "alice")
    expect(page).to_have_url(re.compile(rf"sort=oldest&span=0000000100000002#a-{created.assessment_id}"))
    # override the judge through the plain form
    panel.get_by_role("button", name="Override relevance").click()
    panel.get_by_label("Number value").fill("0.8")
    panel.get_by_role("button", name="Save override").click()
    assert Assessment.objects.get(overrides=judge).value == 0.8
    # delete asks on a page of its own first
    panel.get_by_role("button", name="Delete groundedness").click()
    expect(panel.get_by_role("alertdialog")).to_contain_text("Delete this feedback?")
    assert Assessment.objects.filter(pk=created.pk).exists()
    panel.get_by_role("alertdialog").get_by_role("button", name="Delete").click()
    assert not Assessment.objects.filter(pk=created.pk).exists()
    # history opens inline
    panel.get_by_role("button", name="History of relevance").first.click()
    expect(panel.locator(f"#history-{judge.assessment_id}")).to_contain_text("overridden by")
    context.close()
