"""Reviewer pages: experiments (home), trace list, trace detail and its fragments.

Thin views: they read through selectors, render templates and keep the list context
(filter, sort, page) in the query string so that reload, back and shared links show
the same thing. A GET serving both a page and a fragment picks the fragment in one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET
from django_htmx.middleware import HtmxDetails

from assessments import selectors as assessment_selectors
from feedbackhub.replicas import reads_from_replica

from . import selectors
from .access import OWNER, Actor
from .filters import FIELDS_HELP, FilterError
from .models import Span, Trace


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


PAGE_SIZE = 50
# The trace list counts its matches up to this many ("10,000+ traces" beyond).
COUNT_LIMIT = 10_000
# Traces with more spans than this open with the tree collapsed below COLLAPSE_DEPTH.
BIG_TRACE_SPANS = 200
COLLAPSE_DEPTH = 2
SORTS = {
    "newest": "request_time DESC",
    "oldest": "request_time ASC",
    "slowest": "execution_time_ms DESC",
    "fastest": "execution_time_ms ASC",
    "most_tokens": "total_tokens DESC",
    "costliest": "cost DESC",
}
SORT_LABELS = [
    ("newest", "Newest first"),
    ("oldest", "Oldest first"),
    ("slowest", "Slowest first"),
    ("fastest", "Fastest first"),
    ("most_tokens", "Most tokens first"),
    ("costliest", "Costliest first"),
]
SPAN_TABS = ("inputs", "outputs", "attributes", "events")


def wants_fragment(request: HtmxHttpRequest) -> bool:
    return bool(request.htmx) and not request.htmx.history_restore_request


@dataclass
class ListContext:
    """The trace list a page belongs to: filter text, sort and page token, as in the URL."""

    filter: str = ""
    sort: str = "newest"
    page_token: str = ""
    sort_error: str | None = None

    @classmethod
    def from_params(cls, params) -> ListContext:
        sort, error = params.get("sort") or "newest", None
        if sort not in SORTS:
            error = f"There is no sort order “{sort[:40]}”; showing newest first."
            sort = "newest"
        return cls(
            filter=params.get("filter", ""), sort=sort, page_token=params.get("page_token", ""), sort_error=error
        )

    @property
    def ordering(self) -> str:
        return SORTS[self.sort]

    def params(self, **overrides) -> dict[str, str]:
        params = {
            "filter": self.filter,
            "sort": "" if self.sort == "newest" else self.sort,
            "page_token": self.page_token,
        }
        params.update(overrides)
        return {key: value for key, value in params.items() if value}

    def query(self, **overrides) -> str:
        return urlencode(self.params(**overrides))

    def suffix(self, **overrides) -> str:
        """`?query` or '' — for appending to a URL."""
        query = self.query(**overrides)
        return f"?{query}" if query else ""


# --- home -----------------------------------------------------------------------------------------


@login_required
@require_GET
@reads_from_replica
def home(request: HtmxHttpRequest) -> HttpResponse:
    """The experiments the user may see, each with trace / feedback counts, the reviewers' verdict
    rate and the other boolean series by name and source type.

    Queries: experiments (with the user's role), trace stats, feedback stats, the shown series'
    source types — four, whatever the number of experiments.
    """
    actor = Actor.for_user(request.user)
    cards = selectors.experiments_for_home(actor)
    ids = [card["experiment"].pk for card in cards]
    traces = selectors.trace_stats_by_experiment(ids) if ids else {}
    feedback = assessment_selectors.feedback_stats_by_experiment([card["experiment"] for card in cards])
    for card in cards:
        card.update(traces.get(card["experiment"].pk, {"trace_count": 0, "newest": None}))
        card.update(feedback[card["experiment"].pk])
    return render(request, "traces/home.html", {"cards": cards})


# --- trace list -----------------------------------------------------------------------------------


@login_required
@require_GET
@reads_from_replica
def trace_list(request: HtmxHttpRequest, experiment_id: int) -> HttpResponse:
    """One experiment's traces: filter language, sort, cursor pages, feedback chips per row.

    Queries: experiment, role, the match count (capped), one page of traces, the page's feedback — the same for 1 or 1,000 traces. A bad filter or page token is shown inline (status 400).
    """
    actor = Actor.for_user(request.user)
    experiment = selectors.experiment_for(actor, experiment_id)
    ctx = ListContext.from_params(request.GET)
    filter_error = token_error = total = None
    page = selectors.Page(items=[], next_token=None)
    try:
        queryset = selectors.search_traces(actor, experiment_ids=[experiment.pk], filter_text=ctx.filter)
        total = selectors.count_up_to(queryset, COUNT_LIMIT)
        page = selectors.keyset_page(
            queryset, ordering=ctx.ordering, page_token=ctx.page_token or None, page_size=PAGE_SIZE
        )
    except FilterError as exc:
        filter_error = _filter_error(ctx.filter, exc)
    except ValidationError as exc:
        token_error = " ".join(exc.messages)
    chips, rated = assessment_selectors.feedback_summary_for_traces(
        [trace.trace_id for trace in page.items], user_id=request.user.pk, first_name=experiment.verdict_name
    )
    detail_suffix = ctx.suffix()
    rows = [
        {
            "trace": trace,
            "chips": chips.get(trace.trace_id, []),
            "url": trace.get_absolute_url() + detail_suffix,
            "rated": trace.trace_id in rated,
        }
        for trace in page.items
    ]
    list_url = reverse("traces:trace_list", args=[experiment.pk])
    context = {
        "experiment": experiment,
        "role": actor.role(experiment.pk),
        "ctx": ctx,
        "rows": rows,
        "list_url": list_url,
        "next_url": f"{list_url}?{ctx.query(page_token=page.next_token)}" if page.next_token else None,
        "first_url": f"{list_url}{ctx.suffix(page_token='')}" if ctx.page_token else None,
        "filter_error": filter_error,
        "token_error": token_error,
        "total": total,
        "total_capped": total is not None and total > COUNT_LIMIT,
        "count_limit": COUNT_LIMIT,
        "sorts": SORT_LABELS,
        "fields_help": FIELDS_HELP,
        "saved_filters": _saved_filters(list_url, ctx, experiment.verdict_name, request.user.get_username()),
        "verdict_name": experiment.verdict_name,
    }
    template = "traces/trace_list.html#trace-list" if wants_fragment(request) else "traces/trace_list.html"
    status = 400 if (filter_error or token_error) and not request.htmx else 200
    return render(request, template, context, status=status)


def _filter_error(text: str, exc: FilterError) -> dict:
    """The error message and the filter split around the offending token, for the inline marker."""
    position = getattr(exc, "position", None)
    token = getattr(exc, "token", "") or ""
    message = getattr(exc, "message", None) or str(exc)
    if not isinstance(position, int) or not 0 <= position <= len(text):
        return {"message": message, "before": text, "token": "", "after": ""}
    width = max(len(token), 1)
    return {
        "message": message,
        "before": text[:position],
        "token": text[position : position + width] or " ",
        "after": text[position + width :],
        "position": position,
    }


def _saved_filters(list_url: str, ctx: ListContext, verdict_name: str, username: str) -> list[dict]:
    """The preset filters; thumbs and ratings are the reviewers' verdict series (the experiment's
    verdict_name), "not rated by me" the traces this user has not given a verdict on."""
    key = verdict_name if verdict_name.isidentifier() else "`" + verdict_name.replace("`", "``") + "`"
    me = username.replace("\\", "\\\\").replace("'", "''")
    presets = [
        ("All traces", ""),
        ("Thumbs down", f"feedback.{key} = false"),
        ("Not rated", f"feedback.{key} IS NULL"),
        ("Not rated by me", f"NOT feedback_by.{key} = '{me}'"),
        ("Errors", "trace.status = 'ERROR'"),
        ("Slow (> 2 s)", "trace.execution_time_ms > 2000"),
    ]
    return [
        {
            "label": label,
            "url": list_url + ListContext(filter=text, sort=ctx.sort).suffix(),
            "active": ctx.filter.strip() == text,
        }
        for label, text in presets
    ]


# --- trace detail ---------------------------------------------------------------------------------


@login_required
@require_GET
def trace_detail(request: HtmxHttpRequest, trace_id: str) -> HttpResponse:
    """The review page: header, span tree with timeline, the selected span, the assessments panel.

    The panel's state (an open form, an item's history) comes from the query string, so every
    panel action also works as a plain link. See `render_trace_page` for the queries.
    """
    actor = Actor.for_user(request.user)
    return render_trace_page(request, actor, trace_id, panel=panel_state_from(request.GET))


def panel_state_from(params) -> dict:
    """Panel arguments from the query string (?add=feedback&name=…, ?edit=<id>, ?history=<id> …)."""
    from assessments.panel import panel_state_from_params

    return panel_state_from_params(params)


def render_trace_page(
    request: HtmxHttpRequest, actor: Actor, trace_id: str, *, panel: dict | None = None, status: int = 200
) -> HttpResponse:
    """The whole trace page, with the panel in the state `panel` describes.

    Queries (whatever the number of spans or assessments): trace + experiment, assessments, spans
    (tree columns only), the role, the previous and the next trace of the list, the selected span's
    payload; plus the names for suggestions when a form is open.
    """
    from assessments.panel import panel_context

    trace = selectors.trace_for_review(actor, trace_id)
    ctx = ListContext.from_params(request.GET if request.method == "GET" else request.POST)
    spans = selectors.span_tree_for(trace)
    spans_by_id = {span.span_id: span for span in spans}
    selected_id = request.GET.get("span") or request.POST.get("span") or ""
    if selected_id not in spans_by_id:
        roots = [span for span in spans if span.parent_span_id not in spans_by_id]
        selected_id = roots[0].span_id if roots else ""
    big = len(spans) > BIG_TRACE_SPANS and request.GET.get("expand") != "all"
    # ?zoom=<span id>: the timeline spans that span's range, so a long run's short steps get bars
    zoom = spans_by_id.get(request.GET.get("zoom") or "")
    window = (zoom.start_time_ns, zoom.end_time_ns or zoom.start_time_ns + 1) if zoom is not None else None
    rows = selectors.span_rows(spans, collapse_depth=COLLAPSE_DEPTH if big else None, reveal=selected_id, window=window)
    selected = (
        selectors.span_for(actor, trace.trace_id, selected_id, trace_request_time=trace.request_time)
        if selected_id
        else None
    )

    prev_id = next_id = None
    try:
        queryset = selectors.search_traces(actor, experiment_ids=[trace.experiment_id], filter_text=ctx.filter)
        prev_id, next_id = selectors.adjacent_traces(queryset, ordering=ctx.ordering, trace=trace)
    except (FilterError, ValidationError):
        pass  # a stale or broken list context only loses prev / next

    trace_url = trace.get_absolute_url()
    span_query = ctx.query()
    # The open span tab stays open on the previous and next trace (read the answer, rate, next).
    tab_param = request.GET.get("tab") if request.GET.get("tab") in SPAN_TABS else ""
    context = {
        "trace": trace,
        "experiment": trace.experiment,
        "ctx": ctx,
        "trace_url": trace_url,
        "ctx_suffix": ctx.suffix(),
        "span_href": f"{trace_url}?{span_query}&span=" if span_query else f"{trace_url}?span=",
        "list_url": reverse("traces:trace_list", args=[trace.experiment_id]) + ctx.suffix(),
        "prev_url": reverse("traces:trace_detail", args=[prev_id]) + ctx.suffix(tab=tab_param) if prev_id else None,
        "next_url": reverse("traces:trace_detail", args=[next_id]) + ctx.suffix(tab=tab_param) if next_id else None,
        "tab_param": tab_param,
        "rows": rows,
        "span_count": len(spans),
        "collapsed_start": big,
        "expand_url": f"{trace_url}?{ctx.query(expand='all', span=selected_id)}",
        "duration_ms": _trace_duration(trace, spans),
        "timeline_ms": (window[1] - window[0]) / 1e6 if window else _timeline_ms(spans),
        "zoom": zoom,
        "zoom_start_ms": (window[0] - min(s.start_time_ns for s in spans)) / 1e6 if window else 0,
        "unzoom_url": f"{trace_url}?{ctx.query(span=selected_id, tab=tab_param)}",
        "failed_spans": sum(1 for span in spans if span.status_code == Span.StatusCode.ERROR),
        "selected_id": selected_id,
        "metadata_items": sorted(trace.metadata.items()),
        "tag_items": sorted(trace.tags.items()),
        "can_delete": actor.can(trace.experiment_id, OWNER),
    }
    if selected is not None:
        context.update(span_context(selected, request.GET.get("tab"), trace, ctx))
    assessments = assessment_selectors.assessments_for_trace(trace, actor)
    context["feedback_spans"] = {a.span_id for a in assessments if a.span_id and a.valid}
    context["chips"] = assessment_selectors.trace_chips(trace, assessments)
    context["verdict_name"] = trace.experiment.verdict_name
    context.update(
        panel_context(
            request,
            actor,
            trace,
            assessments=assessments,
            span_names={s.span_id: s.name for s in spans},
            selected_span=spans_by_id.get(selected_id),
            ctx=ctx,
            **(panel or {}),
        )
    )
    return render(request, "traces/trace_detail.html", context, status=status)


def _trace_duration(trace: Trace, spans: list[Span]) -> float | None:
    if trace.execution_time_ms is not None:
        return trace.execution_time_ms
    ends = [span.end_time_ns for span in spans if span.end_time_ns is not None]
    if not spans or not ends:
        return None
    return (max(ends) - min(span.start_time_ns for span in spans)) / 1e6


def _timeline_ms(spans: list[Span]) -> float | None:
    """The width of the timeline: first span start to last span end."""
    if not spans:
        return None
    end = max((span.end_time_ns or span.start_time_ns) for span in spans)
    return (end - min(span.start_time_ns for span in spans)) / 1e6


def span_context(span: Span, tab: str | None, trace: Trace, ctx: ListContext) -> dict:
    """What the span detail shows: the span, the open tab, its offset in the trace, a chat view."""
    from .templatetags.trace_tags import as_conversation

    trace_start_ns = int(trace.request_time.timestamp() * 1e9)
    base = f"{trace.get_absolute_url()}?{ctx.query(span=span.span_id)}"
    tabs = [
        {
            "key": key,
            "label": key.capitalize(),
            "url": f"{base}&tab={key}",
            "count": _count(getattr(span, key)) if key in ("attributes", "events") else None,
        }
        for key in SPAN_TABS
    ]
    events = span.events if isinstance(span.events, list) else []
    return {
        "span": span,
        "tab": tab if tab in SPAN_TABS else "inputs",
        "tabs": tabs,
        "span_offset_ms": max(span.start_time_ns - trace_start_ns, 0) / 1e6,
        "zoom_url": f"{base}&zoom={span.span_id}" + (f"&tab={tab}" if tab in SPAN_TABS else ""),
        "chat_inputs": as_conversation(span.inputs, "inputs"),
        "chat_outputs": as_conversation(span.outputs, "outputs"),
        "events": [_event(event, span.start_time_ns) for event in events],
    }


def _count(value) -> int | None:
    if isinstance(value, (list, dict)):
        return len(value)
    return None


def _event(event, span_start_ns: int) -> dict:
    """An event as shown: name, offset from the span start, exception fields lifted out."""
    if not isinstance(event, dict):
        return {"name": "event", "attributes": event, "offset_ms": None, "exception": None}
    attributes = event.get("attributes") if isinstance(event.get("attributes"), dict) else {}
    stamp = event.get("timestamp_ns") or event.get("time_unix_nano") or event.get("timestamp")
    offset = None
    if isinstance(stamp, int) and not isinstance(stamp, bool):
        if stamp < 10**14:  # microseconds or milliseconds would be far smaller than ns since the epoch
            stamp = stamp * (1000 if stamp > 10**11 else 1_000_000)
        offset = (stamp - span_start_ns) / 1e6
    exception = None
    if event.get("name") == "exception" or any(key.startswith("exception.") for key in attributes):
        exception = {
            "type": attributes.get("exception.type", ""),
            "message": attributes.get("exception.message", ""),
            "stacktrace": attributes.get("exception.stacktrace", ""),
        }
        attributes = {
            k: v
            for k, v in attributes.items()
            if k not in ("exception.type", "exception.message", "exception.stacktrace")
        }
    return {
        "name": str(event.get("name") or "event"),
        "offset_ms": offset,
        "attributes": attributes,
        "exception": exception,
    }


@login_required
@require_GET
def span_detail(request: HtmxHttpRequest, trace_id: str, span_id: str) -> HttpResponse:
    """The span detail fragment (one span's payloads); a plain request opens the trace page on it.

    Queries: the span with its trace, the role.
    """
    actor = Actor.for_user(request.user)
    span = selectors.span_for(actor, trace_id, span_id)
    ctx = ListContext.from_params(request.GET)
    if not wants_fragment(request):
        tab = request.GET.get("tab")
        extra = {"span": span.span_id, **({"tab": tab} if tab in SPAN_TABS else {})}
        return redirect(f"{span.trace.get_absolute_url()}?{ctx.query(**extra)}")
    context = span_context(span, request.GET.get("tab"), span.trace, ctx)
    return render(request, "traces/includes/span_detail.html", context)


@login_required
@require_GET
def trace_summary(request: HtmxHttpRequest, trace_id: str) -> HttpResponse:
    """The header's feedback chips; refreshes itself when the panel fires `assessments-changed`."""
    actor = Actor.for_user(request.user)
    trace = selectors.trace_for(actor, trace_id)
    if not wants_fragment(request):
        return redirect(trace.get_absolute_url())
    # The same chips as the page: only what this actor may see (blind queue answers stay hidden).
    chips = assessment_selectors.trace_chips(trace, assessment_selectors.assessments_for_trace(trace, actor))
    return render(
        request,
        "traces/includes/trace_summary.html",
        {"trace": trace, "chips": chips, "verdict_name": trace.experiment.verdict_name},
    )
