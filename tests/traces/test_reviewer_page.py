"""Issue 17 on the server side of the trace page: hostile text escaped, isolated and its bidi
controls shown; the tab kept on prev / next; the span tree zoomed and marked; the list total."""

import re

import pytest
from django.urls import reverse

from traces.selectors import span_rows
from traces.templatetags.trace_tags import clamped_text, user_text, visible_html

from ..factories import make_feedback, make_spans, make_trace

pytestmark = pytest.mark.django_db
MS = 1_000_000


def spans(n=3, start=1_790_000_000_000_000_000):
    """A 45 s agent run: the root, then n short steps near its end."""
    rows = [
        {
            "span_id": "a" * 16,
            "parent_span_id": None,
            "name": "agent",
            "span_type": "AGENT",
            "start_time_ns": start,
            "end_time_ns": start + 45_000 * MS,
            "status_code": "OK",
        }
    ]
    for k in range(1, n + 1):
        rows.append(
            {
                "span_id": f"{k:016x}",
                "parent_span_id": "a" * 16,
                "name": f"step_{k}",
                "span_type": "TOOL",
                "start_time_ns": start + 44_000 * MS + k * 10 * MS,
                "end_time_ns": start + 44_000 * MS + k * 10 * MS + 5 * MS,
                "status_code": "OK",
            }
        )
    return rows


def test_user_text_isolates_escapes_and_shows_bidi_controls():
    assert user_text("\u202egnp.exe") == (
        '<bdi><span class="bidi-ctl" title="U+202E right-to-left override: shown, not applied">&lt;U+202E&gt;</span>'
        "gnp.exe</bdi>"
    )
    assert user_text("<b>x</b>") == "<bdi>&lt;b&gt;x&lt;/b&gt;</bdi>"
    long = visible_html("y" * 200)
    assert long.count("<wbr>") == 3 and long.replace("<wbr>", "") == "y" * 200


def test_long_text_is_clamped_whole_with_the_rest_hidden():
    html = clamped_text("z" * 5000, "rationale")
    assert 'data-show-all aria-expanded="false">Show all · 5,000 characters</button>' in html
    assert '<span class="clamp-rest" hidden>' in html
    assert re.sub(r"<[^>]+>", "", html).count("z") == 5000  # nothing truncated
    assert "Show all" not in clamped_text("short", "rationale")


def test_zoomed_timeline_gives_short_steps_real_bars(experiment):
    trace = make_trace(experiment, spans=spans())
    whole = span_rows(list(trace.spans.all()))
    assert whole[1].width_pct == 0.4  # 5 ms of 45 s: a dot
    step = next(s for s in trace.spans.all() if s.name == "step_1")
    root = next(s for s in trace.spans.all() if s.name == "agent")
    zoomed = span_rows(list(trace.spans.all()), window=(step.start_time_ns - 10 * MS, step.end_time_ns + 40 * MS))
    by_name = {row.span.name: row for row in zoomed}
    assert by_name["step_1"].width_pct == pytest.approx(5 / 55 * 100, abs=0.01)
    assert by_name["agent"].offset_pct == 0 and by_name["agent"].width_pct == 100  # clipped to the window
    assert root.span_id == by_name["agent"].span.span_id


def test_trace_page_zoom_marks_and_tab_on_prev_next(reviewer_client, experiment):
    first = make_trace(experiment, spans=spans())
    make_trace(experiment, spans=spans(start=1_790_000_100_000_000_000))
    make_feedback(first, name="tool_ok", value=True, span_id=f"{2:016x}")
    url = reverse("traces:trace_detail", args=[first.trace_id])
    html = reviewer_client.get(url, {"tab": "outputs", "zoom": f"{1:016x}"}).content.decode()
    assert "Timeline zoomed to <b><bdi>step_1</bdi></b>" in html
    assert html.count('class="has-feedback-mark"') == 1
    assert re.search(r'href="/traces/tr-[0-9a-f]+/\?tab=outputs" rel="(next|prev)"', html)
    assert 'data-tab="outputs"' in html and 'id="tab-outputs" href=' in html


def test_trace_list_says_how_many_traces_match(reviewer_client, experiment):
    for _ in range(3):
        make_trace(experiment)
    html = reviewer_client.get(reverse("traces:trace_list", args=[experiment.pk])).content.decode()
    assert '<p class="list-total" id="list-total" role="status">3 traces</p>' in html


def test_span_tree_shows_each_llm_calls_tokens_and_cost(reviewer_client, experiment):
    spans = make_spans(3)
    spans[1]["attributes"] = {
        "llm.token_count.prompt": 1000,
        "llm.token_count.completion": 234,
        "llm.model_name": "gpt-4o-mini",
    }
    spans[2]["attributes"] = {"mlflow.chat.tokenUsage": "not usage"}
    trace = make_trace(experiment, spans=spans)
    page = reviewer_client.get(f"/traces/{trace.trace_id}/").content.decode()
    usage = re.findall(r'<span class="span-usage">([^<]*)</span>', page)
    assert len(usage) == 1  # only the span that carries usage; a malformed value shows nothing
    assert usage[0].startswith("1.2k tok · $0.000")
