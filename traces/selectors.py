"""Reads of experiments and traces, shaped for the pages and endpoints that use them."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime, timezone

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Prefetch, Q, QuerySet, prefetch_related_objects
from django.db.models.fields.json import KT
from django.http import Http404

from . import usage
from .access import Actor, visible_experiments
from .models import Experiment, Span, Trace

# Sort keys the list pages and the API accept: name → (column, descending).
TRACE_ORDERINGS = {
    "request_time DESC": ("request_time", True),
    "request_time ASC": ("request_time", False),
    "execution_time_ms DESC": ("execution_time_ms", True),
    "execution_time_ms ASC": ("execution_time_ms", False),
    "total_tokens DESC": ("total_tokens", True),
    "total_tokens ASC": ("total_tokens", False),
    "cost DESC": ("cost", True),
    "cost ASC": ("cost", False),
}
# Sort columns that may be null (a trace still running, a trace without LLM usage): nulls come
# last when descending and first when ascending.
NULLABLE_ORDER_COLUMNS = ("execution_time_ms", "total_tokens", "cost")
DEFAULT_ORDERING = "request_time DESC"
ORDERING_ALIASES = {
    "timestamp_ms": "request_time",
    "timestamp": "request_time",
    "request_time": "request_time",
    "execution_time_ms": "execution_time_ms",
    "execution_time": "execution_time_ms",
    "duration": "execution_time_ms",
    "total_tokens": "total_tokens",
    "tokens": "total_tokens",
    "cost": "cost",
}
LIST_DEFERRED = ("metadata",)


def experiment_for(actor: Actor, experiment_id) -> Experiment:
    """The experiment if the actor may see it; Http404 otherwise (existence is not leaked)."""
    try:
        experiment = Experiment.objects.get(pk=int(experiment_id))
    except (Experiment.DoesNotExist, TypeError, ValueError):
        raise Http404(f"Experiment {experiment_id} not found.") from None
    if actor.role(experiment.pk) is None:
        raise Http404(f"Experiment {experiment_id} not found.")
    return experiment


def trace_for(actor: Actor, trace_id: str, *, for_update: bool = False) -> Trace:
    """A trace the actor may see (experiment loaded); Http404 otherwise."""
    queryset = Trace.objects.select_related("experiment")
    trace = queryset.filter(pk=trace_id).first()
    if trace is None or actor.role(trace.experiment_id) is None:
        raise Http404(f"Trace {trace_id} not found.")
    return trace


def trace_for_write(actor: Actor, trace_id: str) -> Trace:
    """Only the trace's id and experiment (other fields deferred), for the write paths (feedback
    create); Http404 when missing or not visible. One narrow query by primary key, written out
    because compiling the ORM query cost more than running it on the hot path."""
    meta = Trace._meta
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {connection.ops.quote_name(meta.get_field('experiment').column)} "
            f"FROM {connection.ops.quote_name(meta.db_table)} WHERE {connection.ops.quote_name(meta.pk.column)} = %s",
            [trace_id],
        )
        row = cursor.fetchone()
    if row is None or actor.role(row[0]) is None:
        raise Http404(f"Trace {trace_id} not found.")
    return Trace.from_db(connection.alias, ["trace_id", "experiment_id"], [trace_id, row[0]])


def trace_for_detail(actor: Actor, trace_id: str) -> Trace:
    """A trace with its spans (start order) and assessments (creation order) prefetched.

    Three queries whatever the size: the trace (with experiment), its spans, its
    assessments (role lookups are cached on the actor).
    """
    from django.apps import apps

    Assessment = apps.get_model("assessments", "Assessment")
    trace = (
        Trace.objects.select_related("experiment")
        .prefetch_related(Prefetch("assessments", queryset=Assessment.objects.order_by("create_time", "assessment_id")))
        .filter(pk=trace_id)
        .first()
    )
    if trace is None or actor.role(trace.experiment_id) is None:
        raise Http404(f"Trace {trace_id} not found.")
    # After the trace: its request_time names the spans' partition (Span.objects.of_trace).
    prefetch_related_objects(
        [trace],
        Prefetch(
            "spans",
            queryset=Span.objects.filter(trace_request_time=trace.request_time).order_by("start_time_ns", "span_id"),
        ),
    )
    return trace


def _epoch_ms_or_iso(value: str, field: str) -> datetime:
    value = value.strip()
    try:
        milliseconds = int(value)
    except ValueError:
        pass
    else:
        try:
            return datetime.fromtimestamp(milliseconds / 1000, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise ValidationError({field: "is outside the range of dates"}) from None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError({field: "must be epoch milliseconds or an ISO 8601 time"}) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def parse_ordering(text: str | None) -> str:
    """Normalise `timestamp_ms DESC`, `-duration`, `execution_time_ms` … to a TRACE_ORDERINGS key."""
    if not text:
        return DEFAULT_ORDERING
    text = text.strip()
    descending = None
    if text.startswith("-"):
        text, descending = text[1:], True
    parts = text.split()
    column = (
        ORDERING_ALIASES.get(parts[0].removeprefix("trace.").removeprefix("attributes.").lower()) if parts else None
    )
    if column is None or len(parts) > 2:
        raise ValidationError(
            {
                "order_by": f"cannot sort by {text!r}; use request_time, execution_time_ms, total_tokens or cost, ASC or DESC"
            }
        )
    if len(parts) == 2:
        if parts[1].upper() not in ("ASC", "DESC"):
            raise ValidationError({"order_by": f"{parts[1]!r} is not ASC or DESC"})
        descending = parts[1].upper() == "DESC"
    if descending is None:
        descending = True
    return f"{column} {'DESC' if descending else 'ASC'}"


def search_traces(
    actor: Actor,
    *,
    experiment_ids=None,
    filter_text: str | None = None,
    status: str | None = None,
    start_time: str | None = None,
    end_time: str | None = None,
) -> QuerySet[Trace]:
    """Traces the actor may see, narrowed by experiment, the filter language, status and time range.

    Raises ValidationError for bad parameters and traces.filters.FilterError for a bad filter.
    Assessment names defined in the searched experiments compare by their definitions' types
    (traces.filter_types).
    """
    from .filter_types import filter_typed

    queryset = Trace.objects.defer(*LIST_DEFERRED)
    allowed = []
    visible = visible_experiments(actor)
    if experiment_ids:
        ids = []
        for raw in experiment_ids:
            try:
                ids.append(int(raw))
            except (TypeError, ValueError):
                raise ValidationError({"experiment_id": f"{raw!r} is not an experiment id"}) from None
        allowed = [pk for pk in ids if actor.role(pk) is not None]
        queryset = queryset.filter(experiment_id__in=allowed)
    elif actor.system is None and not actor.is_staff:
        queryset = queryset.filter(experiment__in=visible)
    if status:
        if status not in Trace.State.values:
            raise ValidationError({"status": f"must be one of {', '.join(Trace.State.values)}"})
        queryset = queryset.filter(state=status)
    if start_time:
        queryset = queryset.filter(request_time__gte=_epoch_ms_or_iso(start_time, "start_time"))
    if end_time:
        queryset = queryset.filter(request_time__lt=_epoch_ms_or_iso(end_time, "end_time"))
    return filter_typed(queryset, filter_text, allowed)


@dataclass
class Page:
    items: list
    next_token: str | None


def encode_token(payload: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


def decode_token(token: str, field: str = "page_token") -> dict:
    try:
        payload = json.loads(base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValidationError({field: "is not a page token this server issued"}) from None
    if not isinstance(payload, dict):
        raise ValidationError({field: "is not a page token this server issued"})
    return payload


def keyset_page(queryset: QuerySet[Trace], *, ordering: str, page_token: str | None, page_size: int) -> Page:
    """One page of traces in `ordering`, continuing after `page_token` (keyset: no OFFSET scans).

    Ties on the sort column are broken by trace_id ascending. Traces without a
    duration sort as 0 ms.
    """
    column, descending = TRACE_ORDERINGS[ordering]
    order = [f"-{column}" if descending else column, "trace_id"]
    if page_token:
        token = decode_token(page_token)
        if token.get("o") != ordering or "id" not in token or "v" not in token:
            raise ValidationError({"page_token": "does not belong to this ordering"})
        last_value = token["v"]
        if column == "request_time":
            try:
                last_value = datetime.fromisoformat(last_value)
            except (TypeError, ValueError):
                raise ValidationError({"page_token": "is not a page token this server issued"}) from None
        elif last_value is not None and (
            isinstance(last_value, bool) or not isinstance(last_value, float if column == "cost" else int)
        ):
            raise ValidationError({"page_token": "is not a page token this server issued"})
        beyond = "lt" if descending else "gt"
        if last_value is None:
            # Nulls sort last when descending and first when ascending.
            after = Q(**{f"{column}__isnull": True, "trace_id__gt": token["id"]})
            if not descending:
                after |= Q(**{f"{column}__isnull": False})
        else:
            after = Q(**{f"{column}__{beyond}": last_value}) | Q(**{column: last_value, "trace_id__gt": token["id"]})
            if descending and column in NULLABLE_ORDER_COLUMNS:
                after |= Q(**{f"{column}__isnull": True})
        queryset = queryset.filter(after)
    if column in NULLABLE_ORDER_COLUMNS:
        from django.db.models import F

        field = F(column)
        order = [field.desc(nulls_last=True) if descending else field.asc(nulls_first=True), "trace_id"]
    rows = list(queryset.order_by(*order)[: page_size + 1])
    next_token = None
    if len(rows) > page_size:
        rows = rows[:page_size]
        last = rows[-1]
        value = getattr(last, column)
        next_token = encode_token(
            {"o": ordering, "v": value.isoformat() if isinstance(value, datetime) else value, "id": last.trace_id}
        )
    return Page(items=rows, next_token=next_token)


# --- reviewer pages (home, trace list, trace detail) -----------------------------------------

# Span columns the span tree needs; payloads (inputs, outputs, attributes, events) stay in
# the database until a span is selected.
SPAN_TREE_FIELDS = (
    "span_id",
    "parent_span_id",
    "name",
    "span_type",
    "start_time_ns",
    "end_time_ns",
    "status_code",
    "status_message",
)


def trace_stats_by_experiment(experiment_ids) -> dict[int, dict]:
    """{experiment_id: {"trace_count", "newest"}} in one grouped query (index trace_exp_time)."""
    from django.db.models import Count, Max

    rows = (
        Trace.objects.filter(experiment_id__in=list(experiment_ids))
        .order_by()
        .values("experiment_id")
        .annotate(trace_count=Count("pk"), newest=Max("request_time"))
    )
    return {row["experiment_id"]: row for row in rows}


def trace_for_review(actor: Actor, trace_id: str) -> Trace:
    """A trace for the detail page: experiment joined, assessments (creation order) prefetched.
    Two queries, plus the actor's role lookup (cached on the actor); the spans come from
    `span_tree_for`."""
    from django.apps import apps

    Assessment = apps.get_model("assessments", "Assessment")
    trace = (
        Trace.objects.select_related("experiment")
        .prefetch_related(Prefetch("assessments", queryset=Assessment.objects.order_by("create_time", "assessment_id")))
        .filter(pk=trace_id)
        .first()
    )
    if trace is None or actor.role(trace.experiment_id) is None:
        raise Http404(f"Trace {trace_id} not found.")
    return trace


def span_tree_for(trace: Trace) -> list:
    """The trace's spans for the tree, in start order: light named tuples of SPAN_TREE_FIELDS
    (one query). Payloads (inputs, outputs, attributes, events) stay in the database until a span
    is selected (`span_for`); a 1,000-span trace builds no model instances."""
    return list(
        Span.objects.of_trace(trace)
        .order_by("start_time_ns", "span_id")
        .annotate(
            # The LLM calls' usage and cost (traces.usage derives them on every way in).
            tokens=KT(f"attributes__{usage.CHAT_USAGE}__{usage.TOTAL}"),
            cost=KT(f"attributes__{usage.LLM_COST}__total_cost"),
        )
        .values_list(*SPAN_TREE_FIELDS, "tokens", "cost", named=True)
    )


def span_for(actor: Actor, trace_id: str, span_id: str, *, trace_request_time: datetime | None = None) -> Span:
    """One span with its payloads and its trace (+ experiment) joined; Http404 unless visible.
    `trace_request_time`, when the caller has the trace, names the span's partition."""
    spans = Span.objects.filter(trace_id=trace_id, span_id=span_id)
    if trace_request_time is not None:
        spans = spans.filter(trace_request_time=trace_request_time)
    span = (
        spans.select_related("trace__experiment")
        .defer("trace__metadata", "trace__request_preview", "trace__response_preview")
        .first()
    )
    if span is None or actor.role(span.trace.experiment_id) is None:
        raise Http404(f"Span {span_id} not found in trace {trace_id}.")
    return span


def adjacent_traces(queryset: QuerySet[Trace], *, ordering: str, trace: Trace) -> tuple[str | None, str | None]:
    """(previous, next) trace ids around `trace` in `queryset` sorted by `ordering`, as the
    list page shows it (ties broken by trace_id ascending; missing durations sort as in
    keyset_page). Two small indexed queries."""
    from django.db.models import F

    column, descending = TRACE_ORDERINGS[ordering]
    value, tid = getattr(trace, column), trace.trace_id
    isnull = Q(**{f"{column}__isnull": True})
    if value is None:
        same = isnull
        after, before = same & Q(trace_id__gt=tid), same & Q(trace_id__lt=tid)
        if descending:  # nulls last
            before |= ~isnull
        else:  # nulls first
            after |= ~isnull
    else:
        equal = Q(**{column: value})
        greater, smaller = Q(**{f"{column}__gt": value}), Q(**{f"{column}__lt": value})
        after = (smaller if descending else greater) | (equal & Q(trace_id__gt=tid))
        before = (greater if descending else smaller) | (equal & Q(trace_id__lt=tid))
        if column == "request_time":
            # The redundant bound is what the index can seek to; the OR alone made PostgreSQL
            # scan every trace from one end (hundreds of ms at a million traces).
            at_most, at_least = Q(request_time__lte=value), Q(request_time__gte=value)
            after &= at_most if descending else at_least
            before &= at_least if descending else at_most
        if column == "execution_time_ms":
            if descending:
                after |= isnull
            else:
                before |= isnull
    field = F(column)
    if column == "request_time":
        # Never null: the plain order is the trace_exp_time index's (NULLS LAST is not).
        forward = [field.desc() if descending else field.asc(), "trace_id"]
        backward = [field.asc() if descending else field.desc(), "-trace_id"]
    elif descending:
        forward = [field.desc(nulls_last=True), "trace_id"]
        backward = [field.asc(nulls_first=True), "-trace_id"]
    else:
        forward = [field.asc(nulls_first=True), "trace_id"]
        backward = [field.desc(nulls_last=True), "-trace_id"]
    ids = queryset.order_by()
    next_id = ids.filter(after).order_by(*forward).values_list("trace_id", flat=True).first()
    prev_id = ids.filter(before).order_by(*backward).values_list("trace_id", flat=True).first()
    return prev_id, next_id


@dataclass
class SpanRow:
    """One row of the span tree: the span plus its place in the tree and on the timeline."""

    span: Span
    depth: int
    has_children: bool
    parent_id: str | None
    offset_pct: float
    width_pct: float
    offset_ms: float
    collapsed: bool = False
    hidden: bool = False

    @property
    def indent(self) -> int:
        """Indentation level for the stylesheet (.d0 … .d24); deeper spans stop moving right."""
        return min(self.depth, 24)


def _bar(span_start: int, span_end: int, start: int, total: int) -> tuple[float, float]:
    """(offset %, width %) of a span's bar on a timeline from `start` lasting `total` ns, clipped
    to it (a zoomed timeline cuts the spans outside its window; those get no bar)."""
    left = min(max(span_start - start, 0), total)
    right = min(max(span_end - start, 0), total)
    if span_end < start or span_start > start + total:
        return round(left * 100 / total, 3), 0.0
    return round(left * 100 / total, 3), round(max((right - left) * 100 / total, 0.4), 3)


def span_rows(
    spans: list[Span],
    *,
    collapse_depth: int | None = None,
    reveal: str | None = None,
    window: tuple[int, int] | None = None,
) -> list[SpanRow]:
    """The spans as a depth-first list (children in start order) with timeline geometry.

    Spans whose parent is missing are treated as roots. With `collapse_depth`, spans at
    that depth or deeper start collapsed (their descendants hidden), except along the path
    to the span `reveal` (the selected one). `window` (start, end in ns) zooms the timeline to
    that range, e.g. one span's. No queries.
    """
    if not spans:
        return []
    by_id = {span.span_id: span for span in spans}
    children: dict[str | None, list[Span]] = {}
    for span in spans:
        parent = span.parent_span_id if span.parent_span_id in by_id and span.parent_span_id != span.span_id else None
        children.setdefault(parent, []).append(span)
    for kids in children.values():
        kids.sort(key=lambda span: (span.start_time_ns, span.span_id))
    start = min(span.start_time_ns for span in spans)
    end = max((span.end_time_ns or span.start_time_ns) for span in spans)
    if window is not None:
        start, end = window
    total = max(end - start, 1)
    keep_open = set()
    node = by_id.get(reveal)
    while node is not None and node.parent_span_id in by_id and node.parent_span_id not in keep_open:
        keep_open.add(node.parent_span_id)
        node = by_id[node.parent_span_id]
    rows: list[SpanRow] = []
    seen: set[str] = set()
    # Iterative DFS: traces can be deeper than Python's recursion limit.
    stack: list[tuple[Span, int, bool]] = [(span, 0, False) for span in reversed(children.get(None, []))]
    while stack:
        span, depth, hidden = stack.pop()
        if span.span_id in seen:
            continue
        seen.add(span.span_id)
        kids = children.get(span.span_id, [])
        end_ns = span.end_time_ns if span.end_time_ns is not None else span.start_time_ns
        collapsed = bool(
            kids and collapse_depth is not None and depth >= collapse_depth and span.span_id not in keep_open
        )
        rows.append(
            SpanRow(
                span=span,
                depth=depth,
                has_children=bool(kids),
                parent_id=span.parent_span_id if span.parent_span_id in by_id else None,
                offset_pct=_bar(span.start_time_ns, end_ns, start, total)[0],
                width_pct=_bar(span.start_time_ns, end_ns, start, total)[1],
                offset_ms=(span.start_time_ns - start) / 1e6,
                collapsed=collapsed,
                hidden=hidden,
            )
        )
        for kid in reversed(kids):
            stack.append((kid, depth + 1, hidden or collapsed))
    # Spans caught in a parent cycle are never reached from a root; show them at the top level.
    for span in spans:
        if span.span_id not in seen:
            seen.add(span.span_id)
            end_ns = span.end_time_ns if span.end_time_ns is not None else span.start_time_ns
            rows.append(
                SpanRow(
                    span,
                    0,
                    False,
                    None,
                    *_bar(span.start_time_ns, end_ns, start, total),
                    (span.start_time_ns - start) / 1e6,
                )
            )
    return rows


def experiments_for_home(actor: Actor) -> list[dict]:
    """[{"experiment", "role"}] for the experiments the actor may see, by name (one query)."""
    if actor.system is not None or actor.is_staff:
        return [{"experiment": experiment, "role": "staff"} for experiment in Experiment.objects.order_by("name")]
    if actor.user is None or not actor.user.is_authenticated:
        return []
    from .models import Membership

    memberships = Membership.objects.filter(user=actor.user).select_related("experiment").order_by("experiment__name")
    cards = []
    for membership in memberships:
        actor._roles[membership.experiment_id] = membership.role
        cards.append({"experiment": membership.experiment, "role": membership.role})
    return cards


def count_up_to(queryset: QuerySet, limit: int) -> int:
    """How many rows `queryset` has, counted no further than `limit` + 1 (one query: a full count
    of a broad filter over a million traces would take seconds; the list says "more than")."""
    return queryset.order_by()[: limit + 1].count()
