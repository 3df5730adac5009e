"""The reviewer pages of the traces app: sign-in, home, trace list, trace detail, span detail."""

import re
from datetime import datetime, timedelta, timezone

import pytest
from django.urls import reverse

from traces import views
from traces.access import Actor
from traces.models import Membership
from traces.selectors import adjacent_traces, search_traces, span_rows
from traces.templatetags import trace_tags

from ..factories import make_expectation, make_experiment, make_feedback, make_trace

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
XSS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']
START_NS = 1_790_000_000_000_000_000


def spans_tree(count: int, *, fanout: int = 3, marker: str = "payload") -> list[dict]:
    """`count` spans in a tree where span n's parent is span (n - 1) // fanout (depth grows with count)."""
    spans = []
    for n in range(count):
        spans.append(
            {
                "span_id": f"{n + 1:016x}",
                "parent_span_id": None if n == 0 else f"{(n - 1) // fanout + 1:016x}",
                "name": "root" if n == 0 else f"step_{n}",
                "span_type": ["CHAIN", "LLM", "RETRIEVER", "TOOL"][n % 4],
                "start_time_ns": START_NS + n * 1_000,
                "end_time_ns": START_NS + n * 1_000 + 500_000,
                "status_code": "ERROR" if n == 5 else "OK",
                "inputs": {"marker": f"{marker}-in-{n}"},
                "outputs": {"marker": f"{marker}-out-{n}"},
            }
        )
    return spans


def detail_url(trace, **params):
    url = reverse("traces:trace_detail", args=[trace.trace_id])
    if params:
        from urllib.parse import urlencode

        url += "?" + urlencode(params)
    return url


def list_url(experiment, **params):
    url = reverse("traces:trace_list", args=[experiment.pk])
    if params:
        from urllib.parse import urlencode

        url += "?" + urlencode(params)
    return url


def assert_escaped(html: str):
    for payload in XSS:
        assert payload not in html
    assert "<script>alert" not in html
    assert "<img src=x" not in html


# --- sign in, home ----------------------------------------------------------------------------------


def test_pages_send_anonymous_users_to_sign_in(client, trace):
    for url in [reverse("traces:home"), list_url(trace.experiment), detail_url(trace)]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")


def test_login_page_is_styled_and_works(client, reviewer):
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'for="id_username"' in html and 'for="id_password"' in html
    assert "/static/css/app.css" in html
    bad = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert bad.status_code == 200 and "notice-error" in bad.content.decode()
    good = client.post("/accounts/login/", {"username": "alice", "password": "pw-alice"})
    assert good.status_code == 302 and good["Location"] == "/"
    out = client.post("/accounts/logout/")
    assert out.status_code == 302 and out["Location"] == "/accounts/login/"


def test_home_lists_the_users_experiments_with_their_numbers(client, reviewer, experiment, other_experiment):
    trace = make_trace(experiment)
    other = make_trace(experiment)
    make_feedback(trace, value=True)
    make_feedback(other, value=False)
    make_feedback(other, value=True, source_id="u2")
    make_feedback(trace, name="relevance", value=0.5, source_type="LLM_JUDGE", source_id="judge")
    client.force_login(reviewer)
    html = client.get("/").content.decode()
    assert "rag-demo" in html and "other-app" not in html
    stats = re.sub(r"\s+", " ", html)
    assert "<dt>Traces</dt><dd>2</dd>" in stats.replace("> <", "><")
    assert "<dt>Feedback</dt><dd>4</dd>" in stats.replace("> <", "><")
    assert "67%" in html  # 2 of 3 user_satisfaction thumbs are up
    assert "user_satisfaction" in html


def test_staff_see_every_experiment_on_home(client, staff, experiment, other_experiment):
    client.force_login(staff)
    html = client.get("/").content.decode()
    assert "rag-demo" in html and "other-app" in html


def test_home_without_experiments_says_what_to_do(client, outsider):
    client.force_login(outsider)
    assert "No experiments yet" in client.get("/").content.decode()


@pytest.mark.parametrize("experiments", [1, 6])
def test_home_query_count_does_not_grow_with_experiments(
    client, django_user_model, django_assert_num_queries, experiments
):
    user = django_user_model.objects.create_user("rita", password="pw")
    for n in range(experiments):
        experiment = make_experiment(f"exp-{n}")
        Membership.objects.create(user=user, experiment=experiment, role="reviewer")
        for _ in range(2):
            make_feedback(make_trace(experiment), value=bool(n % 2))
    client.force_login(user)
    # session, user, memberships + experiments, trace stats, feedback stats, the shown series'
    # source types (one statement of index probes)
    with django_assert_num_queries(6):
        assert client.get("/").status_code == 200


# --- trace list ----------------------------------------------------------------------------------


@pytest.fixture
def listed(experiment):
    """Three traces: slow/old, fast/new, errored/middle, with feedback of each kind."""
    now = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)
    a = make_trace(
        experiment,
        name="slow_one",
        request_time=now - timedelta(hours=3),
        execution_time_ms=5000,
        request_preview='{"question": "Why is the sky blue?"}',
    )
    b = make_trace(experiment, name="fast_one", request_time=now - timedelta(hours=1), execution_time_ms=20)
    c = make_trace(
        experiment, name="broken_one", request_time=now - timedelta(hours=2), execution_time_ms=900, state="ERROR"
    )
    make_feedback(a, value=True)
    make_feedback(a, value=True, source_id="u2")
    make_feedback(a, value=False, source_id="u3")
    make_feedback(a, name="relevance", value=0.5, source_type="LLM_JUDGE", source_id="judge")
    make_feedback(a, name="relevance", value=1.0, source_type="LLM_JUDGE", source_id="judge2")
    make_feedback(b, name="tone", value="friendly")
    return a, b, c


def test_trace_list_shows_rows_with_feedback_chips(reviewer_client, experiment, listed):
    response = reviewer_client.get(list_url(experiment))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.index("fast_one") < html.index("broken_one") < html.index("slow_one")  # newest first
    assert "Why is the sky blue?" in html  # the question lifted out of the JSON preview
    assert "dot-error" in html
    chips = re.sub(r"\s+", " ", html)
    # chips say what they are: name and value, name and thumbs counts (issue 17)
    assert '<span class="chip-name"><bdi>relevance</bdi></span> <b>0.75</b>' in chips
    assert 'title="user_satisfaction: 2 up, 1 down · by people"' in chips
    assert '<span class="chip-name"><bdi>tone</bdi></span> <span class="chip-val"><bdi>friendly</bdi></span>' in chips
    assert "<html" in html and 'id="trace-list"' in html


def test_trace_list_htmx_request_gets_only_the_list(reviewer_client, experiment, listed):
    response = reviewer_client.get(list_url(experiment, sort="slowest"), headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and html.strip().startswith('<div id="trace-list"')
    assert html.index("slow_one") < html.index("broken_one") < html.index("fast_one")


def test_trace_list_history_restore_gets_the_whole_page(reviewer_client, experiment, listed):
    response = reviewer_client.get(list_url(experiment), headers={**HTMX, "HX-History-Restore-Request": "true"})
    assert "<html" in response.content.decode()


def test_trace_list_filters_with_the_filter_language(reviewer_client, experiment, listed):
    html = reviewer_client.get(list_url(experiment, filter="trace.status = 'ERROR'")).content.decode()
    assert "broken_one" in html and "slow_one" not in html and "fast_one" not in html
    html = reviewer_client.get(list_url(experiment, filter="feedback.relevance > 0.7")).content.decode()
    assert "slow_one" in html and "broken_one" not in html
    # the filter box keeps the text and the saved filter links keep the sort
    assert 'value="feedback.relevance &gt; 0.7"' in html


def test_trace_list_bad_filter_is_shown_inline_pointing_at_the_token(reviewer_client, experiment, listed):
    response = reviewer_client.get(list_url(experiment, filter="trace.name = 'x' AND bogus.field = 1"))
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="filter-error"' in html and 'aria-invalid="true"' in html
    assert re.search(r"<mark>bogus[^<]*</mark>", html), html[html.index("filter-error") :][:600]
    htmx = reviewer_client.get(list_url(experiment, filter="feedback.x = "), headers=HTMX)
    assert htmx.status_code == 200 and 'id="filter-error"' in htmx.content.decode()


def test_trace_list_sorts_by_duration(reviewer_client, experiment, listed):
    html = reviewer_client.get(list_url(experiment, sort="fastest")).content.decode()
    assert html.index("fast_one") < html.index("broken_one") < html.index("slow_one")


def test_trace_list_unknown_sort_falls_back_with_a_message(reviewer_client, experiment, listed):
    html = reviewer_client.get(list_url(experiment, sort="sideways")).content.decode()
    assert "There is no sort order" in html and "fast_one" in html


def row_names(html: str) -> list[str]:
    """The trace names of the list's rows, in order."""
    return re.findall(r'class="row-link"><bdi>([^<]*)</bdi>', html)


def test_trace_list_pages_with_a_cursor_that_keeps_filter_and_sort(reviewer_client, experiment, monkeypatch):
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    for n in range(5):
        make_trace(experiment, name=f"t{n}", execution_time_ms=100 * n)
    first = reviewer_client.get(list_url(experiment, sort="slowest", filter="trace.execution_time_ms >= 100"))
    html = first.content.decode()
    # the rows' names, not substrings of the page (a CSRF token once contained "t2")
    assert row_names(html) == ["t4", "t3"]
    next_url = re.search(r'href="([^"]*page_token=[^"]*)" hx-get', html).group(1).replace("&amp;", "&")
    assert "sort=slowest" in next_url and "filter=" in next_url
    second = reviewer_client.get(next_url, headers=HTMX).content.decode()
    assert row_names(second) == ["t2", "t1"]
    assert "First page" in second
    last_url = re.search(
        r'href="([^"]*page_token=[^"]*)" hx-get="[^"]*" hx-target="#trace-list" hx-swap="outerHTML" hx-push-url="true" rel="next"',
        second,
    )
    assert last_url is None  # t0 is filtered out: no third page


def test_trace_list_bad_page_token_says_so(reviewer_client, experiment, listed):
    response = reviewer_client.get(list_url(experiment, page_token="garbage!"))
    assert response.status_code == 400
    assert "page link is not valid" in response.content.decode()


def test_trace_list_is_not_found_for_outsiders(client, outsider, experiment, other_experiment):
    client.force_login(outsider)
    assert client.get(list_url(experiment)).status_code == 404
    assert client.get("/experiments/99999/traces/").status_code == 404


def test_trace_list_escapes_trace_values(reviewer_client, experiment):
    trace = make_trace(experiment, name=XSS[0], request_preview=XSS[1])
    make_feedback(trace, name=XSS[1], value=XSS[0])
    html = reviewer_client.get(list_url(experiment)).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert_escaped(html)


@pytest.mark.parametrize("traces", [1, 40])
def test_trace_list_query_count_does_not_grow_with_traces(
    reviewer_client, experiment, django_assert_num_queries, traces
):
    for n in range(traces):
        trace = make_trace(experiment, spans=2)
        make_feedback(trace, value=bool(n % 2))
        make_feedback(trace, name="relevance", value=0.5, source_type="LLM_JUDGE")
    # session, user, experiment, role, the match count (capped), one page of traces, their feedback
    with django_assert_num_queries(7):
        assert reviewer_client.get(list_url(experiment)).status_code == 200


# --- trace detail --------------------------------------------------------------------------------


def test_trace_detail_shows_header_tree_and_panel(reviewer_client, trace):
    make_feedback(
        trace, name="relevance", value=0.8, source_type="LLM_JUDGE", source_id="judge-1", rationale="mostly on topic"
    )
    response = reviewer_client.get(detail_url(trace))
    assert response.status_code == 200
    html = response.content.decode()
    assert trace.trace_id in html and 'aria-label="Copy trace id"' in html
    assert 'id="span-tree"' in html and html.count('class="span-row') == 3
    assert 'id="span-detail"' in html and "What is MLflow?" in html  # the root span is selected
    assert 'id="assessment-panel"' in html and "Add feedback" in html
    assert "mostly on topic" in html and "judge-1" in html
    assert "env" in html  # tags


def test_trace_detail_for_a_viewer_hides_every_write_control(client, viewer, trace):
    make_feedback(trace, name="relevance", value=0.8, source_type="LLM_JUDGE")
    client.force_login(viewer)
    page = client.get(detail_url(trace)).content.decode()
    html = page[page.index('<section id="assessment-panel"') : page.index("</aside>")]
    assert "Add feedback" not in html and "Thumbs up" not in html
    assert "Edit relevance" not in html and "Delete relevance" not in html and "Override relevance" not in html
    assert "History of relevance" in html and "read only" in html


def test_trace_detail_prev_and_next_follow_the_list_it_came_from(reviewer_client, experiment, listed):
    slow, fast, broken = listed
    html = reviewer_client.get(detail_url(broken)).content.decode()  # newest first: fast, broken, slow
    assert f'href="/traces/{fast.trace_id}/" rel="prev"' in html
    assert f'href="/traces/{slow.trace_id}/" rel="next"' in html
    html = reviewer_client.get(detail_url(broken, sort="slowest")).content.decode()  # slow, broken, fast
    assert f'href="/traces/{slow.trace_id}/?sort=slowest" rel="prev"' in html
    assert f'href="/traces/{fast.trace_id}/?sort=slowest" rel="next"' in html
    html = reviewer_client.get(detail_url(slow, filter="feedback.relevance > 0.1")).content.decode()
    assert 'rel="prev"' not in html and 'rel="next"' not in html  # the only match
    assert "?filter=feedback.relevance+%3E+0.1" in html  # back to the same list


def test_adjacent_traces_place_missing_durations_like_the_list(experiment):
    ids = {}
    for name, duration in [("a", 30), ("b", None), ("c", 10), ("d", None)]:
        ids[name] = make_trace(experiment, name=name, execution_time_ms=duration)
    actor = Actor.for_system("tests")
    queryset = search_traces(actor, experiment_ids=[experiment.pk])
    ordered_desc = sorted(["a", "c"], key=lambda n: -ids[n].execution_time_ms) + sorted(
        ["b", "d"], key=lambda n: ids[n].trace_id
    )
    ordered_asc = sorted(["b", "d"], key=lambda n: ids[n].trace_id) + ["c", "a"]
    for ordering, expected in [("execution_time_ms DESC", ordered_desc), ("execution_time_ms ASC", ordered_asc)]:
        for i, name in enumerate(expected):
            trace = ids[name]
            prev_id, next_id = adjacent_traces(queryset, ordering=ordering, trace=trace)
            assert prev_id == (ids[expected[i - 1]].trace_id if i > 0 else None), (ordering, name)
            assert next_id == (ids[expected[i + 1]].trace_id if i + 1 < len(expected) else None), (ordering, name)


def test_trace_detail_renders_only_the_selected_spans_payload(reviewer_client, experiment):
    trace = make_trace(experiment, spans=spans_tree(12, marker="zq"))
    html = reviewer_client.get(detail_url(trace)).content.decode()
    assert "zq-in-0" in html
    assert not any(f"zq-in-{n}" in html or f"zq-out-{n}" in html for n in range(1, 12))
    html = reviewer_client.get(detail_url(trace, span=f"{8:016x}")).content.decode()
    assert "zq-in-7" in html and "zq-in-0" not in html


def test_big_trace_starts_collapsed_below_depth_two(reviewer_client, experiment):
    trace = make_trace(experiment, spans=spans_tree(260))
    html = reviewer_client.get(detail_url(trace)).content.decode()
    rows = re.findall(r'<li class="span-row[^"]*" data-span="[0-9a-f]+" data-depth="(\d+)"[^>]*?( hidden)?>', html)
    assert len(rows) == 260
    assert all(not hidden for depth, hidden in rows if int(depth) <= 2)
    assert all(hidden for depth, hidden in rows if int(depth) >= 3)
    assert "Open the whole tree" in html
    expanded = reviewer_client.get(detail_url(trace, expand="all")).content.decode()
    assert " hidden>" not in expanded.split('id="span-tree"')[1].split("</ul>")[0]


def test_selected_span_in_a_collapsed_subtree_is_revealed(reviewer_client, experiment):
    trace = make_trace(experiment, spans=spans_tree(260))
    deep = f"{200:016x}"  # depth 4
    html = reviewer_client.get(detail_url(trace, span=deep)).content.decode()
    row = re.search(rf'<li class="span-row[^"]*is-selected[^"]*" data-span="{deep}"[^>]*>', html).group(0)
    assert "hidden" not in row


def test_failed_spans_are_marked(reviewer_client, experiment):
    trace = make_trace(experiment, spans=spans_tree(8))
    html = reviewer_client.get(detail_url(trace)).content.decode()
    assert re.search(rf'class="span-row d\d+ is-error" data-span="{6:016x}"', html)
    assert ">failed</span>" in html


@pytest.mark.parametrize("spans,assessments", [(3, 1), (400, 60)])
def test_trace_detail_query_count_does_not_grow(
    reviewer_client, experiment, django_assert_num_queries, spans, assessments
):
    trace = make_trace(experiment, spans=spans_tree(spans))
    make_trace(experiment)  # a neighbour for prev / next
    for n in range(assessments):
        make_feedback(
            trace, name=f"score_{n % 7}", value=n / 10, source_type="LLM_JUDGE", span_id=f"{n % spans + 1:016x}"
        )
    make_feedback(trace, value=True)
    # The definitions cache (the verdict's definition) reads its stamp once per worker when stale.
    reviewer_client.get(detail_url(trace))
    # session, user, trace + experiment, spans, assessments, role, next, previous, selected span payload
    with django_assert_num_queries(9):
        response = reviewer_client.get(detail_url(trace))
    assert response.status_code == 200


def test_trace_detail_escapes_everything_from_traces_and_feedback(reviewer_client, experiment):
    spans = spans_tree(3)
    spans[0]["name"] = XSS[0]
    spans[0]["inputs"] = {"q": XSS[0], XSS[1]: [XSS[1]]}
    spans[0]["outputs"] = XSS[1]
    spans[0]["attributes"] = {XSS[0]: XSS[1]}
    spans[0]["events"] = [
        {
            "name": XSS[0],
            "attributes": {"exception.type": XSS[1], "exception.message": XSS[0], "exception.stacktrace": XSS[1]},
        }
    ]
    spans[1]["span_type"] = "CHAT_MODEL"
    spans[1]["inputs"] = {"messages": [{"role": "user", "content": XSS[0]}, {"role": XSS[1], "content": XSS[1]}]}
    trace = make_trace(experiment, spans=spans, name=XSS[1], tags={XSS[0]: XSS[1]}, metadata={XSS[1]: XSS[0]})
    make_feedback(
        trace,
        name=XSS[0],
        value=XSS[1],
        rationale=XSS[0],
        metadata={XSS[1]: XSS[0]},
        source_type="LLM_JUDGE",
        source_id=XSS[1],
        span_id=spans[1]["span_id"],
    )
    make_feedback(trace, name=XSS[1], value={XSS[0]: XSS[1]}, error=None)
    make_expectation(trace, name="expected", value=XSS[0])
    for url in [detail_url(trace), detail_url(trace, tab="events"), detail_url(trace, span=spans[1]["span_id"])]:
        html = reviewer_client.get(url).content.decode()
        assert_escaped(html)
    fragment = reviewer_client.get(
        reverse("traces:span_detail", args=[trace.trace_id, spans[1]["span_id"]]), headers=HTMX
    ).content.decode()
    assert_escaped(fragment)
    assert 'class="chat"' in fragment


def test_unknown_trace_is_a_styled_404(reviewer_client):
    response = reviewer_client.get("/traces/tr-" + "0" * 32 + "/")
    assert response.status_code == 404
    assert "Not found" in response.content.decode() and "app.css" in response.content.decode()


def test_trace_of_another_experiment_is_not_found(reviewer_client, other_experiment):
    assert reviewer_client.get(detail_url(make_trace(other_experiment))).status_code == 404


def test_pages_load_nothing_from_the_network(reviewer_client, trace):
    for url in ["/", list_url(trace.experiment), detail_url(trace), "/accounts/login/"]:
        html = reviewer_client.get(url).content.decode()
        assert not re.search(r'<(script|link)[^>]+(src|href)="(https?:)?//', html), url
        assert "<script>" not in html and " onclick=" not in html and " onload=" not in html  # CSP: script-src 'self'
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), url


# --- span detail, summary --------------------------------------------------------------------------


def test_span_detail_fragment_and_plain_fallback(reviewer_client, experiment):
    trace = make_trace(experiment, spans=spans_tree(4, marker="sd"))
    url = reverse("traces:span_detail", args=[trace.trace_id, f"{3:016x}"])
    fragment = reviewer_client.get(url + "?sort=slowest&tab=outputs", headers=HTMX)
    html = fragment.content.decode()
    assert fragment.status_code == 200 and html.startswith('<section id="span-detail"')
    assert "sd-in-2" in html and "sd-out-2" in html
    assert re.search(r'id="tabpanel-inputs" aria-labelledby="tab-inputs" hidden', html)
    assert "sort=slowest" in html  # tab links keep the list context
    plain = reviewer_client.get(url + "?sort=slowest")
    assert plain.status_code == 302
    assert plain["Location"] == f"/traces/{trace.trace_id}/?sort=slowest&span={3:016x}"


def test_span_detail_shows_chat_messages_as_a_conversation(reviewer_client, experiment):
    spans = spans_tree(2)
    spans[1].update(
        span_type="CHAT_MODEL",
        inputs={
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "18C, sunny"},
            ],
        },
        outputs={"choices": [{"index": 0, "message": {"role": "assistant", "content": "18°C and sunny."}}]},
    )
    trace = make_trace(experiment, spans=spans)
    html = reviewer_client.get(detail_url(trace, span=spans[1]["span_id"])).content.decode()
    assert html.count('class="msg msg-') == 5
    assert "get_weather" in html and "&quot;city&quot;: &quot;Paris&quot;" in html
    assert "18°C and sunny." in html and "Raw JSON" in html


def test_span_detail_folds_exception_stack_traces(reviewer_client, experiment):
    spans = spans_tree(2)
    spans[1]["status_code"] = "ERROR"
    spans[1]["status_message"] = "boom"
    spans[1]["events"] = [
        {
            "name": "exception",
            "timestamp_ns": spans[1]["start_time_ns"] + 2_000_000,
            "attributes": {
                "exception.type": "ValueError",
                "exception.message": "bad input",
                "exception.stacktrace": "Traceback ...\nValueError",
            },
        }
    ]
    trace = make_trace(experiment, spans=spans)
    html = reviewer_client.get(detail_url(trace, span=spans[1]["span_id"], tab="events")).content.decode()
    assert "ValueError" in html and "bad input" in html
    assert '<details class="stack"><summary>Stack trace</summary>' in html
    assert "at +2.0 ms" in html or "at +2 ms" in html
    assert "Failed: <bdi>boom</bdi>" in html


def test_span_detail_of_other_experiments_is_not_found(reviewer_client, other_experiment):
    trace = make_trace(other_experiment, spans=2)
    url = reverse("traces:span_detail", args=[trace.trace_id, f"{1:016x}"])
    assert reviewer_client.get(url, headers=HTMX).status_code == 404


def test_trace_summary_refreshes_the_header_chips(reviewer_client, trace):
    make_feedback(trace, value=False)
    url = reverse("traces:trace_summary", args=[trace.trace_id])
    html = reviewer_client.get(url, headers=HTMX).content.decode()
    assert html.startswith('<div id="trace-summary"') and "assessments-changed from:body" in html
    assert 'title="user_satisfaction: 1 down · by people"' in html
    assert reviewer_client.get(url).status_code == 302


# --- helpers ---------------------------------------------------------------------------------------


def test_span_rows_order_depth_orphans_and_cycles():
    class S:
        def __init__(self, span_id, parent, start, end=None):
            self.span_id, self.parent_span_id, self.start_time_ns, self.end_time_ns = span_id, parent, start, end

    spans = [
        S("a", None, 0, 100),
        S("c", "a", 50, 60),
        S("b", "a", 10, 20),
        S("d", "b", 12, 13),
        S("o", "missing", 30, 40),
        S("x", "y", 5, 6),
        S("y", "x", 5, 6),
    ]
    rows = span_rows(spans)
    assert [(r.span.span_id, r.depth) for r in rows] == [
        ("a", 0),
        ("b", 1),
        ("d", 2),
        ("c", 1),
        ("o", 0),
        ("x", 0),
        ("y", 0),
    ]
    assert rows[1].offset_pct == 10 and rows[1].width_pct == 10
    collapsed = span_rows(spans, collapse_depth=1)
    assert [(r.span.span_id, r.collapsed, r.hidden) for r in collapsed[:4]] == [
        ("a", False, False),
        ("b", True, False),
        ("d", False, True),
        ("c", False, False),
    ]
    revealed = span_rows(spans, collapse_depth=1, reveal="d")
    assert not revealed[1].collapsed and not revealed[2].hidden


def test_display_filters():
    assert trace_tags.duration(None) == "—"
    assert trace_tags.duration(0.42) == "0.42 ms"
    assert trace_tags.duration(68) == "68 ms"
    assert trace_tags.duration(1240) == "1.24 s"
    assert trace_tags.duration(125_000) == "2m 05s"
    assert trace_tags.num(0.6666) == "0.667" and trace_tags.num(4.0) == "4" and trace_tags.num(3) == "3"
    assert trace_tags.short_id("tr-" + "ab" * 16) == "tr-abab…babab"
    assert trace_tags.preview_text('{"question": "Why?"}') == "Why?"
    assert trace_tags.preview_text('{"messages": [{"role": "user", "content": "Hi"}]}') == "Hi"
    assert trace_tags.preview_text("plain") == "plain"
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert trace_tags.reltime(now - timedelta(minutes=5), now) == "5 min ago"
    assert trace_tags.reltime(now - timedelta(days=30), now) == "02 Dec 2025"


def test_json_tree_escapes_and_folds():
    html = str(trace_tags.json_tree({"a": {"b": {"c": [1, "<b>x</b>", None, True]}}}))
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    assert html.count("<details") == 4 and html.count(" open>") == 2  # depth ≥ 2 folded
    big = str(trace_tags.json_tree(list(range(5000))))
    assert big.startswith('<pre class="json">')


def test_as_conversation_understands_common_shapes():
    assert trace_tags.as_conversation({"messages": [{"role": "user", "content": "hi"}]})[0]["text"] == "hi"
    anthropic = trace_tags.as_conversation(
        {
            "system": "sys",
            "messages": [
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t1", "name": "search", "input": {"q": "x"}}],
                }
            ],
        }
    )
    assert anthropic[0]["role"] == "system" and anthropic[1]["tool_calls"][0]["name"] == "search"
    assert trace_tags.as_conversation({"role": "assistant", "content": "ok"}, "outputs")[0]["text"] == "ok"
    assert trace_tags.as_conversation({"query": "not chat"}) is None
    assert trace_tags.as_conversation("text") is None
    assert trace_tags.as_conversation([{"role": "user"}, "x"]) is None


def test_odd_query_parameters_never_break_the_pages(reviewer_client, trace):
    experiment = trace.experiment
    long_filter = "trace.name = 'x' AND " * 300 + "trace.name = 'y'"
    response = reviewer_client.get(list_url(experiment, filter=long_filter))
    assert response.status_code in (200, 400)
    for params in [
        {"span": "nothex"},
        {"tab": "<b>"},
        {"edit": "a-missing"},
        {"history": "x" * 300},
        {"sort": "<script>"},
        {"page_token": "%%%"},
        {"filter": "((("},
        {"add": "nonsense"},
    ]:
        response = reviewer_client.get(detail_url(trace, **params))
        assert response.status_code == 200, params
        assert "<script>" not in response.content.decode().split("</head>")[1]
    assert reviewer_client.get("/traces/not-a-trace/").status_code == 404
    assert reviewer_client.get(f"/traces/{trace.trace_id}/spans/zz/", headers=HTMX).status_code == 404


def test_trace_list_marks_traces_the_reviewer_already_rated(reviewer_client, reviewer, experiment):
    from assessments import services

    mine = make_trace(experiment, name="mine_one")
    make_trace(experiment, name="other_one")
    services.log_feedback(
        trace=mine,
        name="user_satisfaction",
        value=True,
        actor=Actor.for_user(reviewer),
        channel="ui",
        source_type="HUMAN",
        source_id="alice",
    )
    html = reviewer_client.get(list_url(experiment)).content.decode()
    row = lambda name: html[html.index(name) :].split("</tr>")[0]  # noqa: E731
    assert "rated by you" in row("mine_one") and "rated by you" not in row("other_one")
