"""Reads of assessments and their history, shaped for the panel and the API."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connections
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.http import Http404

from traces.access import Actor
from traces.models import Trace

from .models import Assessment, Revision
from .queues.selectors import hide_blind


def mark_overrides(assessments: list[Assessment]) -> list[Assessment]:
    """Set `overridden_by_id` on each assessment from the list itself (no query)."""
    replaced_by = {a.overrides_id: a.assessment_id for a in assessments if a.overrides_id}
    for assessment in assessments:
        assessment.overridden_by_id = replaced_by.get(assessment.assessment_id)
    return assessments


def assessments_for_trace(trace: Trace, actor: Actor | None = None) -> list[Assessment]:
    """All assessments of a trace (valid and overridden), oldest first, with `overridden_by_id`.
    With `actor`, what that actor may see: a reviewer of a blind queue holding the trace does not
    see other reviewers' answers to its questions until they have answered it.

    Uses the prefetched `trace.assessments` when the selector that loaded the trace did so.
    """
    return mark_overrides(hide_blind(actor, trace, list(trace.assessments.all())))


def assessment_for(actor: Actor, assessment_id: str) -> Assessment:
    """An assessment the actor may see, with `overridden_by_id`; Http404 otherwise."""
    replacement = Assessment.objects.filter(overrides_id=OuterRef("pk")).values("pk")[:1]
    assessment = Assessment.objects.annotate(overridden_by_id=Subquery(replacement)).filter(pk=assessment_id).first()
    if assessment is None or actor.role(assessment.experiment_id) is None:
        raise Http404(f"Assessment {assessment_id} not found.")
    return assessment


def history_for(assessment_id: str) -> QuerySet[Revision]:
    """Every revision of an assessment, oldest first, including overrides and deletes that touched it."""
    return (
        Revision.objects.filter(Q(assessment_id=assessment_id) | Q(related_assessment_id=assessment_id))
        .select_related("actor_user")
        .order_by("created_at", "id")
    )


def history_visible_to(actor: Actor, assessment_id: str) -> QuerySet[Revision]:
    """The history if the actor may see the experiment it belongs to (also after a delete); Http404 otherwise."""
    first = Revision.objects.filter(assessment_id=assessment_id).only("experiment_id", "actor_key").first()
    if first is None:
        raise Http404(f"Assessment {assessment_id} not found.")
    if first.experiment_id is None:
        # held feedback (its trace has not arrived): only the key that sent it reads its history
        if actor.api_key is None or first.actor_key_id != actor.api_key.pk:
            raise Http404(f"Assessment {assessment_id} not found.")
    elif actor.role(first.experiment_id) is None:
        raise Http404(f"Assessment {assessment_id} not found.")
    return history_for(assessment_id)


# --- reviewer pages: summaries, names, the panel ---------------------------------------------

# JSON true / false (not the numbers 1 / 0): works as jsonb equality on PostgreSQL and as
# JSON text equality on SQLite. numeric_value narrows through the assessment_exp_name index first.
IS_BOOLEAN = Q(numeric_value__in=[0.0, 1.0]) & (Q(value=True) | Q(value=False))
# Other boolean series a home card shows beside the reviewer's verdict.
CARD_SERIES = 3


def verdict_name_for(trace: Trace) -> str:
    """The name the reviewer's one-key verdict (u / d) writes on a trace: its experiment's
    `verdict_name` setting (default reviewer_verdict), never a name picked from the data, so
    reviewers' thumbs stay apart from end users' thumbs and judges' or code checks' series.
    Reads the experiment unless the trace was loaded with it."""
    return trace.experiment.verdict_name


def feedback_stats_by_experiment(experiments) -> dict[int, dict]:
    """{experiment_id: {"feedback_count", "verdict": {...}, "series": [...]}} for the home page.

    `verdict` is the experiment's verdict series (name, rated, up_rate); `series` the other
    boolean series, most used first (at most CARD_SERIES), each with its source type so an end
    users' thumbs rate or a code check's pass rate is never shown as the reviewers' verdict.
    Two queries whatever the number of experiments: the grouped counts, then one index probe
    per shown series for its source type.
    """
    verdicts = {experiment.pk: experiment.verdict_name for experiment in experiments}
    per_experiment: dict[int, dict] = {
        experiment_id: {"feedback_count": 0, "_bool": {}, "_ups": {}} for experiment_id in verdicts
    }
    for experiment_id, name, n, booleans, ups in _feedback_counts(list(verdicts)):
        stats = per_experiment[experiment_id]
        stats["feedback_count"] += n
        if booleans:
            stats["_bool"][name] = booleans
            stats["_ups"][name] = ups
    shown: list[tuple[int, str]] = []
    for experiment_id, stats in per_experiment.items():
        booleans, ups = stats.pop("_bool"), stats.pop("_ups")
        verdict = verdicts[experiment_id]
        rated = booleans.get(verdict, 0)
        stats["verdict"] = {"name": verdict, "rated": rated, "up_rate": ups[verdict] / rated if rated else None}
        others = sorted((name for name in booleans if name != verdict), key=lambda name: (-booleans[name], name))
        stats["series"] = [
            {"name": name, "rated": booleans[name], "up_rate": ups[name] / booleans[name], "source": None}
            for name in others[:CARD_SERIES]
        ]
        shown += [(experiment_id, series["name"]) for series in stats["series"]]
    sources = _series_sources(shown)
    for experiment_id, stats in per_experiment.items():
        for series in stats["series"]:
            series["source"] = sources.get((experiment_id, series["name"]))
    return per_experiment


def _series_sources(series: list[tuple[int, str]]) -> dict[tuple[int, str], str]:
    """{(experiment_id, name): source type} of one valid feedback per series, in one statement of
    index probes (assessment_exp_name; a LIMIT 1 each, not a scan of the series)."""
    if not series:
        return {}
    table = Assessment._meta.db_table
    probe = (
        f"SELECT CAST(%s AS integer), CAST(%s AS varchar(250)), (SELECT source_type FROM {table} WHERE experiment_id = %s AND kind = %s"
        " AND name = %s AND valid = %s LIMIT 1)"
    )
    sql = " UNION ALL ".join([probe] * len(series))
    params = []
    for experiment_id, name in series:
        params += [experiment_id, name, experiment_id, Assessment.Kind.FEEDBACK.value, name, True]
    with connections[Assessment.objects.db].cursor() as cursor:
        cursor.execute(sql, params)
        return {(int(experiment_id), name): source for experiment_id, name, source in cursor.fetchall() if source}


def _feedback_counts(experiment_ids: list[int]) -> list[tuple[int, str, int, int, int]]:
    """(experiment_id, name, valid feedback, boolean ones, thumbs up) per name with valid feedback.

    On PostgreSQL from the rollup that triggers keep (migration 0003_perf_feedback_rollup): a few
    rows per name instead of every feedback row (2.5 M rows took most of a second). Elsewhere
    `counted_feedback`, the same counts by aggregating the rows.
    """
    connection = connections[Assessment.objects.db]
    if connection.vendor != "postgresql":
        return counted_feedback(experiment_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT experiment_id, name, sum(n)::bigint, sum(booleans)::bigint, sum(ups)::bigint"
            " FROM assessments_feedback_rollup WHERE experiment_id = ANY(%s)"
            " GROUP BY experiment_id, name HAVING sum(n) > 0",
            [experiment_ids],
        )
        return cursor.fetchall()


def counted_feedback(experiment_ids: list[int]) -> list[tuple[int, str, int, int, int]]:
    """`_feedback_counts` by one grouped query over valid feedback (index assessment_exp_name)."""
    rows = (
        Assessment.objects.filter(experiment_id__in=experiment_ids, kind=Assessment.Kind.FEEDBACK, valid=True)
        .order_by()
        .values_list("experiment_id", "name")
        .annotate(
            n=Count("pk"),
            booleans=Count("pk", filter=IS_BOOLEAN),
            ups=Count("pk", filter=Q(value=True)),
        )
    )
    return list(rows)


def assessment_names(experiment_id: int, kind: str) -> list[str]:
    """Names of assessments of `kind` used in the experiment, for the form's suggestions (one query)."""
    return list(
        Assessment.objects.filter(experiment_id=experiment_id, kind=kind)
        .order_by("name")
        .values_list("name", flat=True)
        .distinct()[:200]
    )


def span_names(trace_id: str, span_ids) -> dict[str, str]:
    """{span_id: name} for the given spans of a trace (one query; none when no ids)."""
    from traces.models import Span

    span_ids = {span_id for span_id in span_ids if span_id}
    if not span_ids:
        return {}
    return dict(Span.objects.filter(trace_id=trace_id, span_id__in=span_ids).values_list("span_id", "name"))


@dataclass
class Chip:
    """One compact summary of a trace's valid feedback under one name (trace list, header)."""

    name: str
    kind: str  # thumbs, number, label, json, error
    count: int = 0
    up: int = 0
    down: int = 0
    total: float = 0.0
    labels: dict = field(default_factory=dict)
    sources: set = field(default_factory=set)  # source types (HUMAN, LLM_JUDGE, CODE) under it

    @property
    def average(self) -> float | None:
        return self.total / self.count if self.kind == "number" and self.count else None

    @property
    def top_labels(self) -> list[tuple[str, int]]:
        return sorted(self.labels.items(), key=lambda item: (-item[1], item[0]))[:2]

    @property
    def more_labels(self) -> int:
        return max(len(self.labels) - 2, 0)


_CHIP_ORDER = {"thumbs": 0, "number": 1, "label": 2, "json": 3, "error": 4}


def summarize_feedback(rows, first_name: str | None = None) -> list[Chip]:
    """Chips from (name, value, error[, source_type]) rows of valid feedback: thumbs counts for
    booleans, the average for numbers, label counts for strings, with the source types seen.
    `first_name` (the reviewer's verdict) sorts first. No queries."""
    chips: dict[tuple[str, str], Chip] = {}
    for name, value, error, *source in rows:
        if isinstance(value, bool):
            kind = "thumbs"
        elif isinstance(value, (int, float)):
            kind = "number"
        elif isinstance(value, str):
            kind = "label"
        elif value is None:
            kind = "error" if error else "json"
        else:
            kind = "json"
        chip = chips.setdefault((name, kind), Chip(name=name, kind=kind))
        chip.count += 1
        if source:
            chip.sources.add(source[0])
        if kind == "thumbs":
            if value:
                chip.up += 1
            else:
                chip.down += 1
        elif kind == "number":
            chip.total += value
        elif kind == "label":
            chip.labels[value[:40]] = chip.labels.get(value[:40], 0) + 1
    return sorted(
        chips.values(),
        key=lambda chip: (
            _CHIP_ORDER[chip.kind],
            chip.name != first_name,
            chip.name,
        ),
    )


def trace_chips(trace: Trace, assessments: list[Assessment]) -> list[Chip]:
    """The trace header's chips from the assessments the actor may see (assessments_for_trace
    with the actor, so blind answers stay hidden), the reviewer's verdict first. No queries."""
    return summarize_feedback(
        ((a.name, a.value, a.error, a.source_type) for a in assessments if a.valid and a.kind == "feedback"),
        trace.experiment.verdict_name,
    )


def feedback_chips_for_traces(trace_ids, first_name: str | None = None) -> dict[str, list[Chip]]:
    """{trace_id: [Chip]} for a page of traces, in one query over their valid feedback."""
    return feedback_summary_for_traces(trace_ids, first_name=first_name)[0]


def feedback_summary_for_traces(
    trace_ids, user_id: int | None = None, first_name: str | None = None
) -> tuple[dict[str, list[Chip]], set[str]]:
    """({trace_id: [Chip]}, {trace ids the user gave valid feedback on}) for a page of traces,
    in one query over their valid feedback; `first_name` (the verdict) leads each row's chips."""
    trace_ids = list(trace_ids)
    if not trace_ids:
        return {}, set()
    rows: dict[str, list] = {}
    rated: set[str] = set()
    for trace_id, name, value, error, source_type, author in (
        Assessment.objects.filter(trace_id__in=trace_ids, kind=Assessment.Kind.FEEDBACK, valid=True)
        .order_by()
        .values_list("trace_id", "name", "value", "error", "source_type", "created_by_id")
    ):
        rows.setdefault(trace_id, []).append((name, value, error, source_type))
        if user_id is not None and author == user_id:
            rated.add(trace_id)
    return {trace_id: summarize_feedback(items, first_name) for trace_id, items in rows.items()}, rated


def used_idempotency_keys(experiment_id: int, keys: list[str]) -> set[str]:
    """Which of `keys` are taken in the experiment (public feedback tokens count their uses so;
    one query on the assessment_unique_idempotency_key index)."""
    return set(
        Assessment.objects.filter(experiment_id=experiment_id, idempotency_key__in=keys).values_list(
            "idempotency_key", flat=True
        )
    )


# --- pending assessments (feedback that arrived before its trace) -------------------------------


def pending_as_assessment(pending) -> Assessment:
    """A PendingAssessment shown as the (unsaved) assessment it will become: the create call
    with its later updates applied; `pending=True`. No queries."""
    from datetime import datetime

    payload = pending.payload
    state = {key: payload.get(key) for key in ("name", "value", "error", "rationale", "metadata")}
    for change in payload.get("updates") or ():
        state.update(change)
    create_time = datetime.fromisoformat(payload["create_time"]) if payload.get("create_time") else pending.created_at
    assessment = Assessment(
        assessment_id=pending.assessment_id,
        trace_id=pending.trace_id,
        span_id=payload.get("span_id"),
        name=state["name"],
        kind=pending.kind,
        value=state["value"],
        error=state["error"],
        rationale=state["rationale"] or "",
        source_type=payload.get("source_type") or Assessment.SourceType.HUMAN,
        source_id=payload.get("source_id") or "",
        metadata=state["metadata"] or {},
        overrides_id=payload.get("overrides"),
        valid=not payload.get("overridden_by"),
        version=1 + len(payload.get("updates") or ()),
        create_time=create_time,
        last_update_time=datetime.fromisoformat(payload["last_update_time"])
        if payload.get("last_update_time")
        else create_time,
    )
    assessment.pending = True
    assessment.replayed = False
    assessment.overridden_by_id = payload.get("overridden_by")
    return assessment


def pending_for(actor: Actor, assessment_id: str, trace_id: str | None = None):
    """The actor's own unexpired PendingAssessment with this id (and trace), or None.

    Pending rows have no experiment yet, so only the key or user that sent them sees them.
    """
    from django.utils import timezone

    from .models import PendingAssessment

    if actor.api_key is not None:
        owner = Q(actor_key=actor.api_key)
    elif actor.user is not None and actor.user.is_authenticated:
        owner = Q(actor_user=actor.user)
    else:
        return None
    queryset = PendingAssessment.objects.filter(owner, pk=assessment_id, expires_at__gt=timezone.now())
    if trace_id is not None:
        queryset = queryset.filter(trace_id=trace_id)
    return queryset.first()


def assessment_or_pending_for(actor: Actor, assessment_id: str) -> Assessment:
    """assessment_for, or the actor's pending assessment with that id (as `pending_as_assessment`)."""
    try:
        return assessment_for(actor, assessment_id)
    except Http404:
        pending = pending_for(actor, assessment_id)
        if pending is None:
            raise
        return pending_as_assessment(pending)


def assessment_on_trace(actor: Actor, trace_id: str, assessment_id: str) -> Assessment | None:
    """The assessment of the trace if the actor may see it, else the actor's held one with that
    id (as `pending_as_assessment`), else None."""
    assessment = Assessment.objects.filter(pk=assessment_id, trace_id=trace_id).first()
    if assessment is not None and actor.role(assessment.experiment_id) is not None:
        return assessment
    pending = pending_for(actor, assessment_id, trace_id)
    return pending_as_assessment(pending) if pending is not None else None


def pending_for_trace(actor: Actor, trace_id: str) -> list[Assessment]:
    """The actor's unexpired pending assessments of a trace (e.g. span feedback waiting for its
    span), shown as assessments; one query."""
    from django.utils import timezone

    from .models import PendingAssessment

    if actor.api_key is None:
        return []
    rows = PendingAssessment.objects.filter(trace_id=trace_id, actor_key=actor.api_key, expires_at__gt=timezone.now())
    return [pending_as_assessment(row) for row in rows.order_by("created_at", "assessment_id")]
