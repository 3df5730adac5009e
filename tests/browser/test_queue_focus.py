"""A reviewer works a review queue in focus mode in Debian's chromium, by keyboard only; the
queue is blind, so another reviewer's answer stays hidden until the reviewer has answered."""

import re

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from assessments.definitions import services as definition_services
from assessments.models import Assessment
from assessments.queues import services
from assessments.queues.models import QueueWork
from traces.access import Actor
from traces.models import Membership

from ..factories import make_experiment, make_trace
from ..queues.conftest import SYSTEM, define
from .test_review_flow import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def blind_queue(live):
    experiment = make_experiment("rag-demo")
    define(experiment)
    users = {}
    for name in ("alice", "bob"):
        users[name] = get_user_model().objects.create_user(name, password=f"{name}-pass-123")
        Membership.objects.create(user=users[name], experiment=experiment, role="reviewer")
    traces = [make_trace(experiment, spans=3, trace_id=f"tr-{n:032x}") for n in range(1, 4)]
    queue = services.create_queue(
        experiment=experiment,
        actor=SYSTEM,
        name="Blind weekly review",
        instructions="Judge the answer against the docs.",
        questions=["correct", "helpfulness"],
        answers_per_item=2,
        blind=True,
    )
    services.add_items(queue=queue, actor=SYSTEM, trace_ids=[t.trace_id for t in traces])
    bob = Actor.for_user(users["bob"])
    services.next_item(queue=queue, actor=bob)
    services.answer(queue=queue, actor=bob, trace_id=traces[0].trace_id, answers={"correct": False, "helpfulness": 2})
    return {"queue": queue, "traces": traces, "live": live, "alice": users["alice"]}


def ready(page, question="correct"):
    """queues.js has run on the new page: the first open question is the current one."""
    expect(page.locator(f"[data-question={question}]")).to_have_class(re.compile("q-active"))


def test_reviewer_works_a_blind_queue_by_keyboard(watched, blind_queue, shots):
    page, live, queue, traces = watched, blind_queue["live"], blind_queue["queue"], blind_queue["traces"]
    sign_in(page, live)
    # blind: bob's answer is hidden on the trace page too
    page.goto(f"{live}/traces/{traces[0].trace_id}/")
    expect(page.locator("#assessment-panel")).not_to_contain_text("helpfulness")

    page.goto(f"{live}/queues/{queue.pk}/review/")
    expect(page.locator("#q-start")).to_be_focused()
    page.keyboard.press("Enter")
    focus = page.locator("[data-queue-focus]")
    expect(focus).to_contain_text("1 of 3")
    expect(focus).to_contain_text("Judge the answer against the docs.")
    expect(focus).to_contain_text("What is MLflow?")
    expect(page.locator("#q-blind-note")).to_be_visible()
    expect(focus.locator(".q-others")).not_to_contain_text("bob")
    page.screenshot(path=str(shots / "queue-focus-blind.png"), full_page=True)

    ready(page)
    page.keyboard.press("?")
    expect(page.locator("#shortcuts")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#shortcuts")).to_be_hidden()

    page.keyboard.press("1")  # correct: yes, then helpfulness is the current question
    expect(page.locator("[data-question=helpfulness]")).to_have_class("q-question q-active")
    page.keyboard.press("4")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(traces[1].trace_id))
    expect(focus).to_contain_text("2 of 3")
    ready(page)
    page.keyboard.press("s")  # decline the second item, with a reason
    expect(page.locator("#q-reason")).to_be_focused()
    page.keyboard.type("not my language")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(traces[2].trace_id))
    expect(focus).to_contain_text("2 of 3")  # the third item: still the second answer to give
    ready(page)
    page.keyboard.press("2")  # correct: no
    page.keyboard.press("5")
    page.keyboard.press("Enter")
    expect(page.locator(".q-done")).to_contain_text("All done")
    page.screenshot(path=str(shots / "queue-focus-done.png"), full_page=True)

    # u: back to the previous answers; the first item now shows bob's answer (alice answered it)
    page.wait_for_load_state()  # the "all done" page is a new page: its keys are live once queues.js ran
    page.keyboard.press("u")
    expect(page).to_have_url(re.compile(traces[2].trace_id))
    expect(focus).to_contain_text("Changing an answer")
    ready(page)  # queues.js has run on this page: its keys are live
    page.keyboard.press("u")
    expect(page).to_have_url(re.compile(traces[0].trace_id))
    ready(page)
    expect(focus.locator(".q-others")).to_contain_text("bob")
    expect(focus.locator("[data-question=helpfulness] input[value='4']")).to_be_checked()
    page.screenshot(path=str(shots / "queue-focus-back.png"), full_page=True)
    page.keyboard.press("1")  # the current question is the first one again: keep "yes"
    page.keyboard.press("3")
    page.keyboard.press("Enter")  # the answer changes; nothing is left: all done again
    expect(page.locator(".q-done")).to_contain_text("All done")

    mine = Assessment.objects.filter(created_by=blind_queue["alice"], name="helpfulness")
    assert sorted(mine.values_list("value", flat=True)) == [3, 5]
    assert QueueWork.objects.get(reviewer=blind_queue["alice"], state="declined").reason == "not my language"
    page.goto(f"{live}/traces/{traces[0].trace_id}/")
    expect(page.locator("#assessment-panel")).to_contain_text("helpfulness")


def test_a_text_question_takes_the_focus_and_the_digits_keep_working(watched, live):
    """A text question is typed into as soon as it is the current one (no Tab): after a digit
    picks the choice before it, and on arrival when it comes first. Esc moves on to the next
    question, where the digits pick again; Ctrl+Enter submits from the text."""
    experiment = make_experiment("rag-demo")
    define(experiment)
    definition_services.create_definition(experiment=experiment, actor=SYSTEM, name="comment", type="text")
    alice = get_user_model().objects.create_user("alice", password="alice-pass-123")
    Membership.objects.create(user=alice, experiment=experiment, role="reviewer")
    trace = make_trace(experiment, spans=1, trace_id=f"tr-{1:032x}")
    choice_first = services.create_queue(
        experiment=experiment, actor=SYSTEM, name="choice then text", questions=["correct", "comment"]
    )
    text_first = services.create_queue(
        experiment=experiment, actor=SYSTEM, name="text then choice", questions=["comment", "correct"]
    )
    for queue in (choice_first, text_first):
        services.add_items(queue=queue, actor=SYSTEM, trace_ids=[trace.trace_id])
    page = watched
    sign_in(page, live)

    page.goto(f"{live}/queues/{choice_first.pk}/review/")
    page.keyboard.press("Enter")
    ready(page)
    page.keyboard.press("1")  # correct: yes, then the text question has the focus
    expect(page.locator("textarea[name=q-comment]")).to_be_focused()
    page.keyboard.type("cites the 2.3 docs")  # digits type here: it is a text answer
    page.keyboard.press("Control+Enter")
    expect(page.locator(".q-done")).to_contain_text("All done")

    page.goto(f"{live}/queues/{text_first.pk}/review/")
    page.keyboard.press("Enter")
    ready(page, "comment")
    expect(page.locator("textarea[name=q-comment]")).to_be_focused()
    page.keyboard.type("vague")
    page.keyboard.press("Escape")  # on to the next question: the digits pick again
    expect(page.locator("[data-question=correct]")).to_have_class(re.compile("q-active"))
    page.keyboard.press("2")
    expect(page.locator("[data-question=correct] input[value=false]")).to_be_checked()
    page.keyboard.press("Enter")
    expect(page.locator(".q-done")).to_contain_text("All done")

    written = dict(Assessment.objects.filter(created_by=alice).values_list("name", "value").order_by("create_time"))
    assert sorted(Assessment.objects.filter(created_by=alice, name="comment").values_list("value", flat=True)) == [
        "cites the 2.3 docs",
        "vague",
    ]
    assert written["correct"] is False
