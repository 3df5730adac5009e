"""Which feedback rows an analysis reads, and how each name is typed.

Shared by everything that aggregates feedback (the insights page, the metrics API, MLflow's
trace metrics; later the agreement statistics): one place decides that only valid feedback
counts, that time is the trace's request time (a late rating lands in its trace's bucket),
and that the trace list's filter language narrows the traces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection
from django.db.models import Count, QuerySet

from traces.filters import filter_traces
from traces.filters.sql import JSONTypeOf
from traces.models import Experiment, Trace

from ..definitions.selectors import current_versions
from ..models import Assessment

BOOLEAN, NUMBER, CATEGORY, TEXT, JSON = "boolean", "number", "category", "text", "json"
# A JSON value type → the analysis type of a name without a definition.
_INFERRED = {"boolean": BOOLEAN, "number": NUMBER, "string": CATEGORY}


@dataclass(frozen=True)
class Scope:
    """The traces an analysis looks at: the experiment's, requested in [start, end), matching
    `filter_text` (the trace list's language; blank for all)."""

    experiment: Experiment
    start: datetime | None = None
    end: datetime | None = None
    filter_text: str = ""

    def shifted(self, start: datetime, end: datetime) -> Scope:
        return Scope(self.experiment, start, end, self.filter_text)


@dataclass(frozen=True)
class NameType:
    """How a feedback name is analysed: its type and, from its definition, integer / bounds /
    levels / options. `defined` is False for a type guessed from the stored values."""

    name: str
    type: str
    defined: bool = False
    integer: bool = False
    minimum: float | None = None
    maximum: float | None = None
    levels: dict = field(default_factory=dict)
    options: tuple = ()
    description: str = ""

    @property
    def is_scale(self) -> bool:
        """An integer scale of at most 11 points: a histogram bar per point."""
        return (
            self.type == NUMBER
            and self.integer
            and self.minimum is not None
            and self.maximum is not None
            and self.maximum - self.minimum <= 10
        )


def traces_in(scope: Scope) -> QuerySet[Trace]:
    """The scope's traces. Raises FilterError for a filter that does not parse."""
    queryset = Trace.objects.filter(experiment_id=scope.experiment.pk)
    if scope.start is not None:
        queryset = queryset.filter(request_time__gte=scope.start)
    if scope.end is not None:
        queryset = queryset.filter(request_time__lt=scope.end)
    return filter_traces(queryset, scope.filter_text)


def valid_rows(scope: Scope, *, kinds=(Assessment.Kind.FEEDBACK,), names=None) -> QuerySet[Assessment]:
    """Valid assessments of `kinds` on the scope's traces (optionally of `names`). Raises FilterError."""
    rows = Assessment.objects.filter(experiment_id=scope.experiment.pk, kind__in=list(kinds), valid=True)
    if names is not None:
        rows = rows.filter(name__in=list(names))
    if scope.start is not None:
        rows = rows.filter(trace__request_time__gte=scope.start)
    if scope.end is not None:
        rows = rows.filter(trace__request_time__lt=scope.end)
    if scope.filter_text.strip():
        matching = filter_traces(Trace.objects.filter(experiment_id=scope.experiment.pk), scope.filter_text)
        rows = rows.filter(trace__in=matching.values("pk"))
    return rows


def feedback_rows(scope: Scope, names=None) -> QuerySet[Assessment]:
    """Valid feedback on the scope's traces (optionally of `names`). Raises FilterError."""
    return valid_rows(scope, names=names)


def _from_definition(version) -> NameType:
    constraints = version.constraints or {}
    levels = constraints.get("levels") or {}
    return NameType(
        name=version.definition.name,
        type=version.type,
        defined=True,
        integer=bool(constraints.get("integer")),
        minimum=constraints.get("min", min((float(k) for k in levels), default=None)),
        maximum=constraints.get("max", max((float(k) for k in levels), default=None)),
        levels=levels,
        options=tuple(
            option.get("value") if isinstance(option, dict) else option for option in constraints.get("options") or ()
        ),
        description=version.description,
    )


def _value_kinds(experiment: Experiment, names) -> dict[str, dict[str, int]]:
    """{name: {JSON value type: valid feedback count}}: from the hourly rollup on PostgreSQL (a few
    thousand rows), else from the assessments."""
    if connection.vendor == "postgresql":
        sql = (
            "SELECT name, value_kind, sum(n)::bigint FROM insights_feedback_hourly"
            " WHERE experiment_id = %s AND kind = 'feedback'"
            + (" AND name = ANY(%s)" if names is not None else "")
            + " GROUP BY 1, 2 HAVING sum(n) <> 0 ORDER BY 1"
        )
        seen: dict[str, dict[str, int]] = {}
        with connection.cursor() as cursor:
            cursor.execute(sql, [experiment.pk, list(names)] if names is not None else [experiment.pk])
            for name, kind, n in cursor.fetchall():
                seen.setdefault(name, {})[kind] = n
        return seen
    rows = Assessment.objects.filter(experiment_id=experiment.pk, kind=Assessment.Kind.FEEDBACK, valid=True)
    if names is not None:
        rows = rows.filter(name__in=list(names))
    seen = {}
    for row in rows.values("name", value_type=JSONTypeOf("value")).annotate(n=Count("pk")).order_by("name"):
        seen.setdefault(row["name"], {})[row["value_type"]] = row["n"]
    return seen


def name_types(experiment: Experiment, names=None) -> dict[str, NameType]:
    """The experiment's feedback names, definitions first (in definition order), then the names
    used without one, typed from their values (booleans, numbers, else categories). Two queries
    (one when every name asked for has a definition: no values to read)."""
    typed: dict[str, NameType] = {}
    for version in current_versions(experiment.pk, archived=False):
        if version.definition.kind == Assessment.Kind.FEEDBACK and (names is None or version.definition.name in names):
            typed[version.definition.name] = _from_definition(version)
    undefined = None if names is None else [name for name in names if name not in typed]
    seen = _value_kinds(experiment, undefined) if undefined is None or undefined else {}
    for name, counts in seen.items():
        if name in typed:
            continue
        usable = {kind: n for kind, n in counts.items() if kind in _INFERRED}
        kind = max(usable, key=lambda k: (usable[k], k)) if usable else None
        typed[name] = NameType(name=name, type=_INFERRED.get(kind, JSON))
    return typed
