"""The assessment cards of the panel (built in Python by `assessment_item` / `assessment_card`):
every value type, who and when, the target span, metadata, overrides, the actions each role
gets, escaping, and the item an action targets still coming from the template."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from assessments import services
from traces.access import Actor

from ..factories import SYSTEM, make_expectation, make_feedback, span_id

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
XSS = '"><img src=x onerror=alert(1)>'


def items_of(html: str) -> dict[str, str]:
    """Each rendered item's HTML by assessment id."""
    return {
        match.group(1): match.group(0)
        for match in re.finditer(r'<li class="item[^"]*" id="a-([^"]+)".*?\n</li>', html, re.S)
    }


def page(client: Client, trace, query: str = "") -> str:
    return client.get(reverse("traces:trace_detail", args=[trace.trace_id]) + query).content.decode()


def test_every_value_type_has_its_look(reviewer_client, trace):
    made = {
        "thumb": make_feedback(trace, value=False),
        "number": make_feedback(trace, name="relevance", value=0.12345),
        "label": make_feedback(trace, name="tone", value="friendly"),
        "long": make_feedback(trace, name="notes", value="x" * 61),
        "json": make_feedback(trace, name="topics", value=["a", {"b": 1}]),
        "error": make_feedback(
            trace,
            name="judge",
            value=None,
            error={"error_code": "TIMEOUT", "error_message": "took too long", "stack_trace": "line 1\nline 2"},
        ),
        "expectation": make_expectation(trace, value={"facts": ["one"]}),
    }
    items = items_of(page(reviewer_client, trace))
    thumb = items[made["thumb"].assessment_id]
    assert '<span class="thumb-value down" title="thumbs down"><svg class="icon icon-thumb-down"' in thumb
    assert '<span class="sr-only">thumbs down</span>' in thumb
    assert '<span class="num-value">0.123</span>' in items[made["number"].assessment_id]
    assert '<span class="label-chip"><bdi>friendly</bdi></span>' in items[made["label"].assessment_id]
    assert f'<div class="long-text"><bdi>{"x" * 61}</bdi></div>' in items[made["long"].assessment_id]
    topics = items[made["json"].assessment_id]
    assert (
        '<details class="json-value"><summary class="mono">[&quot;a&quot;, {&quot;b&quot;: 1}]</summary><div class="json-tree">'
        in topics
    )
    error = items[made["error"].assessment_id]
    assert re.search(r'<span class="error-value"><svg class="icon icon-alert".*?</svg> TIMEOUT</span>', error)
    assert ' <span class="muted"><bdi>took too long</bdi></span>' in error
    assert (
        '<details class="stack"><summary>Stack trace</summary><pre class="mono">line 1\nline 2</pre></details>' in error
    )
    assert (
        '<details class="json-value"><summary class="mono">{&quot;facts&quot;: [&quot;one&quot;]}</summary>'
        in items[made["expectation"].assessment_id]
    )


def test_who_when_rationale_span_and_metadata(reviewer_client, trace):
    made = make_feedback(
        trace,
        name="relevance",
        value=0.5,
        source_type="LLM_JUDGE",
        source_id="openai:/gpt-4o-mini",
        rationale="cites the docs",
        span_id=span_id(1),
        metadata={"model": "gpt", "tokens": "12"},
    )
    item = items_of(page(reviewer_client, trace))[made.assessment_id]
    assert '<span class="who"><span class="source source-llm_judge">LLM judge</span> ' in item
    assert '<span class="source-id"><bdi>openai:/gpt-4o-mini</bdi></span></span>' in item
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT[^"]+\+00:00" title="[^"]+ UTC">just now</time>', item)
    assert '<div class="rationale"><bdi>cites the docs</bdi></div>' in item
    assert (
        f'<a class="span-ref" href="/traces/{trace.trace_id}/?span={span_id(1)}" data-select-span="{span_id(1)}"'
        f' title="Show span {span_id(1)}">'
    ) in item
    assert '<span class="sr-only">Attached to span </span><span><bdi>step_1</bdi></span></a>' in item
    assert '<summary>metadata <span class="count">2</span></summary>' in item
    assert (
        '<div><dt class="mono"><bdi>model</bdi></dt><dd><bdi>gpt</bdi></dd></div>'
        '<div><dt class="mono"><bdi>tokens</bdi></dt><dd><bdi>12</bdi></dd></div>' in item
    )
    assert f'<div id="history-{made.assessment_id}" class="history-slot"></div>' in item


def test_an_edited_item_shows_its_last_change(reviewer_client, trace, reviewer):
    made = services.log_feedback(
        trace=trace, name="n", value=1, actor=Actor.for_user(reviewer), channel="ui", source_id="alice"
    )
    services.update_assessment(assessment=made, actor=Actor.for_user(reviewer), channel="ui", value=2)
    item = items_of(page(reviewer_client, trace))[made.assessment_id]
    assert re.search(r'title="[^"]+ UTC · last change [^"]+ UTC"', item)


def test_an_override_links_both_items(reviewer_client, trace, reviewer):
    judged = make_feedback(trace, name="relevance", value=0.4, source_type="LLM_JUDGE", source_id="judge-1")
    correction = services.override_feedback(
        assessment=judged, actor=Actor.for_user(reviewer), channel="ui", value=0.9, source_id="alice"
    )
    items = items_of(page(reviewer_client, trace))
    old, new = items[judged.assessment_id], items[correction.assessment_id]
    assert old.startswith(f'<li class="item is-overridden" id="a-{judged.assessment_id}"')
    assert f'overridden by <a href="#a-{correction.assessment_id}"><span class="num-value">0.9</span>' in old
    assert '<span class="muted">alice</span></a></p>' in old
    assert f'<p class="corrects">corrects <a href="#a-{judged.assessment_id}">LLM judge judge-1</a></p>' in new
    assert new.startswith(f'<li class="item is-mine" id="a-{correction.assessment_id}"')


def test_actions_follow_the_role(client, trace, reviewer, owner, viewer):
    judged = make_feedback(trace, name="relevance", value=0.4, source_type="LLM_JUDGE", source_id="judge-1")
    mine = services.log_feedback(
        trace=trace,
        name="user_satisfaction",
        value=True,
        actor=Actor.for_user(reviewer),
        channel="ui",
        source_id="alice",
    )
    buttons = re.compile(r'aria-label="(Edit|Override|History of|Delete) [^"]+"')

    client.force_login(reviewer)
    items = items_of(page(client, trace, "?sort=oldest"))
    assert buttons.findall(items[mine.assessment_id]) == ["Edit", "Override", "History of", "Delete"]
    assert buttons.findall(items[judged.assessment_id]) == ["Override", "History of"]
    form = re.search(r'<form method="get" action="([^"]+)" hx-get="([^"]+)">(.*?)<button', items[mine.assessment_id])
    assert form.groups()[:2] == (
        f"/traces/{trace.trace_id}/#a-{mine.assessment_id}",
        reverse("assessments:assessment_panel", args=[trace.trace_id]),
    )
    assert '<input type="hidden" name="sort" value="oldest">' in form.group(3)
    delete = reverse("assessments:assessment_delete", args=[mine.assessment_id])
    assert (
        f'<form method="post" action="{delete}" hx-post="{delete}" '
        f'hx-confirm="Delete feedback “user_satisfaction” (true)? The history is kept.">'
        '<input type="hidden" name="csrfmiddlewaretoken" value="'
    ) in items[mine.assessment_id]
    history = reverse("assessments:assessment_history", args=[mine.assessment_id])
    assert f'hx-get="{history}" hx-target="#history-{mine.assessment_id}"' in items[mine.assessment_id]

    client.force_login(owner)
    items = items_of(page(client, trace))
    assert buttons.findall(items[mine.assessment_id]) == ["Edit", "Override", "History of", "Delete"]
    assert buttons.findall(items[judged.assessment_id]) == ["Edit", "Override", "History of", "Delete"]

    client.force_login(viewer)
    items = items_of(page(client, trace))
    assert [buttons.findall(item) for item in items.values()] == [["History of"], ["History of"]]


def test_the_targeted_item_opens_its_form_and_the_others_stay_cards(client, trace, owner):
    first, second = make_feedback(trace, value=True), make_feedback(trace, value=False, source_id="user_456")
    client.force_login(owner)
    for mode, marker in [
        ("edit", 'id="edit-form-title"'),
        ("override", 'id="override-form-title"'),
        ("delete", 'role="alertdialog"'),
        ("history", 'class="history" role="region"'),
    ]:
        html = client.get(
            reverse("assessments:assessment_panel", args=[first.trace_id]) + f"?{mode}={first.assessment_id}",
            headers=HTMX,
        ).content.decode()
        items = items_of(html)
        assert marker in items[first.assessment_id], mode
        assert marker not in items[second.assessment_id], mode
        assert f'<div id="history-{second.assessment_id}" class="history-slot"></div>' in items[second.assessment_id]
        if mode != "edit":  # the targeted item keeps its card above the form
            assert '<div class="item-actions">' in items[first.assessment_id]


def test_focus_moves_to_the_written_item(reviewer_client, trace):
    reviewer_client.post(
        reverse("assessments:feedback_create", args=[trace.trace_id]),
        {"name": "tone", "value_type": "category", "value_category": "calm"},
        headers=HTMX,
    )
    html = reviewer_client.post(
        reverse("assessments:feedback_create", args=[trace.trace_id]),
        {"name": "tone", "value_type": "category", "value_category": "warm"},
        headers=HTMX,
    ).content.decode()
    assert len(re.findall(r"data-assessment data-focus>", html)) == 1
    assert re.search(
        r'data-assessment data-focus>\s*<div class="item-line">\s*<span class="value"><span class="label-chip"><bdi>warm',
        html,
    )


def test_cards_escape_everything_a_client_wrote(reviewer_client, trace):
    make_feedback(
        trace,
        name=XSS,
        value=XSS,
        rationale=XSS,
        source_type="CODE",
        source_id=XSS,
        metadata={XSS: XSS},
    )
    make_feedback(trace, name="judge", value=None, error={"error_code": XSS, "error_message": XSS, "stack_trace": XSS})
    make_feedback(trace, name="json", value={XSS: [XSS]}, actor=SYSTEM)
    html = page(reviewer_client, trace)
    panel = html[html.index('<section id="assessment-panel"') : html.index("</aside>")]
    assert "<img" not in panel and XSS not in panel
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in panel
