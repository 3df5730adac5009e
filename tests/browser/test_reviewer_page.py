"""Issue 17 in Debian's chromium: the reviewer's page where a demanding reviewer stumbled —
honest thumbs, hostile and huge text, the answer one key away, chips that say what they are,
the add form and the keyboard, the trace list on a phone."""

import re
import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from assessments.models import Assessment
from traces.models import Membership

from ..factories import make_experiment, make_feedback, make_trace
from .test_review_flow import T0, rag_spans, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HUGE = "A" * 100_000  # one unbroken word of 100 KB
SPOOF = "\u202egnp.exe"  # RIGHT-TO-LEFT OVERRIDE: displays as "exe.png" if obeyed


@pytest.fixture
def team(live):
    """rag-demo with alice (reviewer) and ten answered questions, newest last."""
    experiment = make_experiment("rag-demo")
    alice = get_user_model().objects.create_user("alice", password="alice-pass-123")
    Membership.objects.create(user=alice, experiment=experiment, role="reviewer")
    traces = [
        make_trace(
            experiment,
            spans=rag_spans(f"Question number {n}?", f"Answer number {n} from the docs.", n),
            name="answer_question",
            request_time=T0 + timedelta(minutes=n),
        )
        for n in range(10)
    ]
    return {"experiment": experiment, "traces": traces, "alice": alice, "live": live}


def test_huge_unbroken_text_renders_fast_and_bidi_is_shown_in_true_order(watched, team, shots):
    page, live = watched, team["live"]
    trace = team["traces"][0]
    make_feedback(trace, name="relevance", value=0.2, source_type="LLM_JUDGE", source_id="judge", rationale=HUGE)
    make_feedback(trace, name="attachment", value=SPOOF, source_type="CODE", source_id="scanner")
    sign_in(page, live)
    began = time.monotonic()
    page.goto(f"{live}/traces/{trace.trace_id}/", wait_until="load")
    page.evaluate("document.body.getBoundingClientRect().height")  # layout done
    loaded = time.monotonic() - began
    # the browser's share: from the first byte of the page to its layout (before: 9-18 s)
    browser_ms = page.evaluate("performance.now() - performance.getEntriesByType('navigation')[0].responseStart")
    print(
        f"\nitem 2: trace page with a 100 KB unbroken rationale: {loaded:.3f} s in all, {browser_ms:.0f} ms in the browser"
    )
    page.screenshot(path=str(shots / "item2-hostile-text.png"))
    # Not a speed measurement (the figure is printed): a guard against the pathology, which cost
    # 9-18 s in the browser alone. Under CI's load a healthy page took up to 1.7 s, so the bounds
    # sit well between the two.
    assert browser_ms < 5000, f"the browser took {browser_ms:.0f} ms to render a 100 KB rationale"
    assert loaded < 8.0, f"trace page with a 100 KB rationale took {loaded:.2f} s"
    assert page.evaluate("!!window.htmx")
    # the rationale is clamped with a way to show all of it, never truncated
    rationale = page.locator("#assessment-panel .rationale").first
    assert rationale.evaluate("el => el.textContent.length") >= 100_000
    assert rationale.bounding_box()["height"] < 200
    show = page.locator("#assessment-panel").get_by_role("button", name=re.compile("Show all"))
    show.first.click()
    assert rationale.bounding_box()["height"] > 400
    # the override character is visible and not obeyed: "g" is drawn left of ".exe"
    label = page.locator("#assessment-panel bdi", has_text="gnp.exe").first
    marker = label.locator(".bidi-ctl")
    expect(marker).to_have_text("<U+202E>")
    assert "\u202e" not in page.evaluate("document.body.innerText")
    order = label.evaluate("""el => {
        const node = [...el.childNodes].find(n => n.nodeType === 3 && n.data.includes('gnp'));
        const at = (i) => { const r = document.createRange(); r.setStart(node, i); r.setEnd(node, i + 1); return r.getBoundingClientRect().x; };
        const i = node.data.indexOf('g');
        return [at(i), at(node.data.indexOf('exe') + 2)];
    }""")
    assert order[0] < order[1], order
    label.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "item2-bidi.png"))


def test_rate_ten_traces_reading_each_answer_keyboard_only(watched, team, shots):
    """Open the list's first trace, then per trace: read the answer (Outputs), rate, next."""
    page, live = watched, team["live"]
    sign_in(page, live)
    page.goto(f"{live}/experiments/{team['experiment'].pk}/traces/?sort=oldest")
    keys = []

    def press(key):
        keys.append(key)
        page.keyboard.press(key)

    press("j")
    press("Enter")
    expect(page).to_have_url(re.compile(rf"/traces/{team['traces'][0].trace_id}/"))
    page.wait_for_load_state("load")
    page.screenshot(path=str(shots / "item3-first-trace.png"))
    press("o")  # the answer; the tab then stays open on every next trace
    for n, trace in enumerate(team["traces"]):
        expect(page).to_have_url(re.compile(rf"/traces/{trace.trace_id}/\?.*tab=outputs"))
        outputs = page.locator("#tabpanel-outputs")
        expect(outputs).to_be_visible()
        expect(outputs).to_contain_text(f"Answer number {n} from the docs.")  # read it
        expect(page.locator("#tab-outputs")).to_have_attribute("aria-selected", "true")
        if n == 0:
            page.screenshot(path=str(shots / "item3-answer-open.png"))
        verdict = "u" if n % 3 else "d"
        press(verdict)
        pressed = "Thumbs up" if verdict == "u" else "Thumbs down"
        expect(page.locator("#assessment-panel").get_by_role("button", name=pressed)).to_have_attribute(
            "aria-pressed", "true"
        )
        if n < 9:
            press("j")
            expect(page).to_have_url(re.compile(rf"/traces/{team['traces'][n + 1].trace_id}/"))
            page.wait_for_load_state("load")
    rated = Assessment.objects.filter(trace__in=team["traces"], created_by=team["alice"])
    assert rated.count() == 10
    assert sorted(rated.values_list("value", flat=True)) == [False] * 4 + [True] * 6
    per_trace = (len(keys) - 2) / 10  # j + Enter open the list's first trace
    print(
        f"\nitem 3: rated 10 traces reading each answer with {len(keys) - 2} keystrokes ({per_trace:.1f} per trace): {' '.join(keys)}"
    )
    assert per_trace <= 2.1, keys


def test_span_tabs_move_with_arrow_keys_and_stay_in_the_url(watched, team):
    page, live = watched, team["live"]
    trace = team["traces"][0]
    sign_in(page, live)
    page.goto(f"{live}/traces/{trace.trace_id}/")
    tab = page.locator("#tab-inputs")
    expect(tab).to_have_attribute("tabindex", "0")
    tab.focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#tab-outputs")).to_be_focused()
    expect(page.locator("#tabpanel-outputs")).to_be_visible()
    page.keyboard.press("End")
    expect(page.locator("#tab-events")).to_have_attribute("aria-selected", "true")
    page.keyboard.press("ArrowRight")  # wraps around
    expect(page.locator("#tab-inputs")).to_be_focused()
    page.keyboard.press("ArrowLeft")
    expect(page).to_have_url(re.compile(r"tab=events"))
    # another span keeps the tab, and so does a reload
    page.locator("#span-tree").get_by_role("link", name=re.compile("ChatCompletion")).click()
    expect(page.locator("#span-detail h2")).to_have_text("ChatCompletion")
    expect(page.locator("#tab-events")).to_have_attribute("aria-selected", "true")
    expect(page).to_have_url(re.compile(r"span=0000000000000003.*tab=events|tab=events.*span=0000000000000003"))
    page.reload()
    expect(page.locator("#tabpanel-events")).to_be_visible()


def test_chips_say_what_they_are(watched, team, shots):
    page, live = watched, team["live"]
    trace = team["traces"][9]
    for name in ("user_satisfaction", "sql_executes", "reviewer_verdict"):
        make_feedback(trace, name=name, value=False, source_type="CODE" if name == "sql_executes" else "HUMAN")
    make_feedback(trace, name="relevance", value=0.8, source_type="LLM_JUDGE", source_id="judge")
    make_feedback(trace, name="tone", value="friendly", source_type="LLM_JUDGE", source_id="judge")
    sign_in(page, live)
    page.goto(f"{live}/experiments/{team['experiment'].pk}/traces/")
    row = page.locator("#trace-table tbody tr").first
    page.screenshot(path=str(shots / "item4-chips.png"))
    cell = row.locator("td.chips")
    chips = cell.locator(".chip:visible")
    expect(chips).to_have_count(4)  # three chips and "+2 more"
    expect(cell.get_by_role("button", name="Show all 5 feedback chips")).to_have_text("+2 more")
    names = [text.strip() for text in cell.locator(".chip .chip-name").all_text_contents()]
    assert sorted(names) == ["relevance", "reviewer_verdict", "sql_executes", "tone", "user_satisfaction"]
    cell.get_by_role("button", name="Show all 5 feedback chips").focus()
    expect(cell.locator(".chip:not(.chip-more):visible")).to_have_count(5)
    expect(cell.locator(".chip", has_text="tone")).to_contain_text("tone friendly")
    expect(cell.locator(".chip", has_text="sql_executes").locator(".chip-src")).to_have_text("code")
    expect(cell.locator(".chip", has_text="relevance").locator(".chip-src")).to_have_text("judge")
    page.screenshot(path=str(shots / "item4-chips-open.png"))
    # nothing is cut: each visible chip shows its whole name
    for chip in cell.locator(".chip-name").all():
        assert chip.evaluate("el => el.scrollWidth <= el.clientWidth + 1"), chip.text_content()


def test_add_form_opens_focused_above_the_groups_and_errors_stay_in_view(watched, team, shots):
    page, live = watched, team["live"]
    trace = team["traces"][0]
    for n in range(8):
        make_feedback(trace, name=f"check_{n}", value=n % 2 == 0, source_type="CODE", source_id="ci")
    make_feedback(trace, name="user_satisfaction", value=True)
    sign_in(page, live)
    page.goto(f"{live}/traces/{trace.trace_id}/")
    page.keyboard.press("a")
    panel = page.locator("#assessment-panel")
    form = panel.locator("form.panel-form")
    expect(form).to_be_visible()
    page.screenshot(path=str(shots / "item5-add-form.png"))
    assert form.evaluate("f => f.contains(document.activeElement)"), "focus is not in the add form"
    first_group = panel.locator("section.group").first
    assert form.bounding_box()["y"] < first_group.bounding_box()["y"]
    # a name of an existing group, a number without a value: the error is next to the field, in view
    page.keyboard.press("Escape")
    expect(form).to_be_hidden()
    page.keyboard.press("a")
    panel.get_by_label("Name").fill("check_7")
    panel.get_by_role("radio", name="Number").check()
    panel.get_by_role("button", name="Save").click()
    error = panel.locator(".field-error").first
    expect(error).to_be_visible()
    page.screenshot(path=str(shots / "item5-add-form-error.png"))
    expect(error).to_be_in_viewport()
    assert (
        panel.locator("form.panel-form").bounding_box()["y"] < panel.locator("section.group").first.bounding_box()["y"]
    )
    focused = page.evaluate("document.activeElement.getAttribute('aria-invalid')")
    assert focused == "true"


def test_trace_list_on_a_phone_is_cards(browser, team, shots):
    live = team["live"]
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-US")
    page = context.new_page()
    sign_in(page, live)
    page.goto(f"{live}/experiments/{team['experiment'].pk}/traces/")
    page.screenshot(path=str(shots / "item6-phone-list.png"), full_page=False)
    row = page.locator("#trace-table tbody tr").first
    preview = row.locator("td.preview")
    assert preview.bounding_box()["width"] > 250
    expect(preview).to_contain_text("Question number 9?")
    name = row.locator("td.name a")
    assert name.evaluate("el => el.scrollWidth <= el.clientWidth + 1 && !el.textContent.includes('…')")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    context.close()


def test_the_one_key_verdict_is_the_reviewers_own_series(watched, team, shots):
    page, live = watched, team["live"]
    experiment, traces = team["experiment"], team["traces"]
    for n, trace in enumerate(traces[:3]):
        make_feedback(trace, name="user_satisfaction", value=n != 0, source_id=f"user_{n}")  # end users
    make_feedback(traces[0], name="sql_executes", value=True, source_type="CODE", source_id="ci")
    olga = get_user_model().objects.create_user("olga", password="olga-pass-123")
    Membership.objects.create(user=olga, experiment=experiment, role="owner")
    sign_in(page, live)
    card = page.get_by_role("listitem").filter(has_text="rag-demo")
    page.screenshot(path=str(shots / "item1-home-before-rating.png"))
    expect(card.locator(".verdict-stat")).to_contain_text("not rated yet")
    expect(card.locator(".series li").first).to_contain_text("people user_satisfaction 67% thumbs up of 3")
    expect(card.locator(".series li").nth(1)).to_contain_text("code check sql_executes 100% passed of 1")

    page.goto(f"{live}/traces/{traces[0].trace_id}/")
    panel = page.locator("#assessment-panel")
    expect(panel.locator(".quick-rate")).to_contain_text("Your verdict reviewer_verdict")
    page.keyboard.press("d")
    expect(panel.get_by_role("button", name="Thumbs down")).to_have_attribute("aria-pressed", "true")
    page.screenshot(path=str(shots / "item1-panel-verdict.png"))
    verdict = Assessment.objects.get(trace=traces[0], source_id="alice")
    assert (verdict.name, verdict.value) == ("reviewer_verdict", False)
    assert Assessment.objects.filter(name="user_satisfaction").count() == 3  # end users' series untouched
    chips = page.locator("#trace-summary")
    expect(chips.locator(".chip").first).to_contain_text("reviewer")  # tagged, first

    page.goto(live + "/")
    expect(card.locator(".verdict-stat")).to_contain_text("0% up of 1")
    expect(card.locator(".series li").first).to_contain_text("67% thumbs up of 3")  # unchanged
    page.screenshot(path=str(shots / "item1-home-after-rating.png"))

    # "not rated by me" beside "not rated"
    page.goto(f"{live}/experiments/{experiment.pk}/traces/")
    page.get_by_role("link", name="Not rated by me").click()
    expect(page.locator("#trace-table tbody tr")).to_have_count(9)
    expect(page.get_by_label("Filter", exact=True)).to_have_value("NOT feedback_by.reviewer_verdict = 'alice'")

    # the owner renames the verdict on the definitions page; u then writes the new name
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, live, "olga", "olga-pass-123")
    page.goto(f"{live}/experiments/{experiment.pk}/definitions/")
    page.get_by_label("Verdict name").fill("answer_ok")
    page.get_by_label("Verdict name").press("Enter")
    expect(page).to_have_url(re.compile(r"/definitions/#verdict-title$"))  # saved, then redirected
    expect(page.get_by_label("Verdict name")).to_have_value("answer_ok")
    experiment.refresh_from_db()
    assert experiment.verdict_name == "answer_ok"
    page.goto(f"{live}/traces/{traces[1].trace_id}/")
    page.keyboard.press("u")
    expect(page.locator("#assessment-panel").get_by_role("button", name="Thumbs up")).to_have_attribute(
        "aria-pressed", "true"
    )
    assert Assessment.objects.get(trace=traces[1], source_id="olga").name == "answer_ok"
