"""Reads behind the agreement page and API: which series to compare, their type, the matched
pairs and the reviewers' ratings (one query each: the rows of both series, matched in numpy),
turned into statistics.

A *series* is feedback under one name, optionally narrowed to a source type, a source id and a
queue (`metadata["queue_id"]`). Only valid (not overridden) feedback with a value counts.
Two series are matched by trace and span: every A and B assessment on the same trace and the
same span (or both on the trace itself) make a pair; several raters on one trace make several
pairs, and the intervals resample whole traces.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter

import numpy as np
from django.core.exceptions import ValidationError
from django.db import connections
from django.db.models import Case, ExpressionWrapper, IntegerField, Q, QuerySet, Value, When
from django.db.models.lookups import Exact

from traces.filters import JSONKeyText
from traces.filters.sql import JSONTypeOf, JSONValueText
from traces.models import Experiment

from ..definitions.cache import rules_for
from ..definitions.rules import MAX_LEVELS
from ..models import Assessment
from . import statistics
from .statistics import Pairs

# Value types the statistics handle, and the JSON type their values have.
JSON_TYPE = {"boolean": "boolean", "category": "string", "ordinal": "number", "number": "number"}
TYPE_OF_JSON = {"boolean": "boolean", "string": "category", "number": "number"}
JSON_TYPES = sorted(TYPE_OF_JSON)
DISAGREEMENTS = 20
MAX_REVIEWERS = 30


@dataclass(frozen=True)
class Series:
    """Feedback under `name`, optionally from one source type, source id or queue."""

    name: str
    source_type: str = ""
    source_id: str = ""
    queue_id: str = ""

    @property
    def label(self) -> str:
        parts = [self.name]
        if self.source_type:
            parts.append(self.source_type)
        if self.source_id:
            parts.append(self.source_id)
        if self.queue_id:
            parts.append(f"queue {self.queue_id}")
        return " · ".join(parts)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "source_type": self.source_type or None,
            "source_id": self.source_id or None,
            "queue_id": self.queue_id or None,
        }


@dataclass(frozen=True)
class Scale:
    """How a series' values are compared: `type` boolean, category, ordinal or number; `labels`
    the ordered values of the label types (ordinal: every level from the lowest to the highest)."""

    type: str
    labels: tuple = ()

    @property
    def is_label(self) -> bool:
        return self.type != "number"


def _condition(series: Series) -> Q:
    """The series as a condition on its experiment's valid feedback."""
    condition = Q(name=series.name)
    if series.source_type:
        condition &= Q(source_type=series.source_type)
    if series.source_id:
        condition &= Q(source_id=series.source_id)
    if series.queue_id:
        condition &= Q(Exact(JSONKeyText("metadata", "queue_id"), series.queue_id))
    return condition


def _feedback(experiment: Experiment) -> QuerySet:
    return Assessment.objects.filter(
        experiment_id=experiment.pk, kind=Assessment.Kind.FEEDBACK, valid=True, value__isnull=False
    ).annotate(value_type=JSONTypeOf("value"))


class _SeriesRows:
    """The valid feedback of one or two series with a value, fetched once (one query, one row per
    assessment even when it belongs to both series, in no particular order) as columns: trace,
    span, assessment id, JSON type, numeric value, text (strings only), the series it belongs to
    (bit i for series i) and, for reviewers, the source id.

    The value types, the trace counts behind coverage and the matching all come from these
    columns, so the database reads the series' rows once. Before, counting distinct traces per
    type sorted ~200,000 rows a request in SQL (spilling to disk at the default work_mem) and
    the self-join on (trace, span) read them twice more."""

    def __init__(self, experiment: Experiment, *series: Series, reviewers: bool = False):
        conditions = [_condition(one) for one in series]
        combined = conditions[0]
        for condition in conditions[1:]:
            combined |= condition
        type_code = Case(
            *(When(value_type=json_type, then=Value(code)) for code, json_type in enumerate(JSON_TYPES)),
            output_field=IntegerField(),
        )
        # Bit i set when the row belongs to series i (a row may belong to both).
        member = sum(
            (
                Case(When(condition, then=Value(1 << index)), default=Value(0))
                for index, condition in enumerate(conditions)
            ),
            start=Value(0),
        )
        rows = (
            _feedback(experiment)
            .filter(combined)
            .annotate(
                type_code=type_code,
                text=Case(When(value_type="string", then=JSONValueText("value"))),
                member=ExpressionWrapper(member, output_field=IntegerField()),
            )
        )
        extra = ["source_id"] if reviewers else []
        rows = rows.order_by().values_list(
            "trace_id", "span_id", "assessment_id", "type_code", "numeric_value", "text", "member", *extra
        )
        # Straight from the cursor: the queryset's iterator costs more than the query here.
        with connections[rows.db].cursor() as cursor:
            cursor.execute(*rows.query.sql_with_params())
            fetched = cursor.fetchall()
        # Columns are taken out of the rows only where every row's value is needed.
        self.rows = fetched
        self.size = len(fetched)
        self.trace_ids = list(map(itemgetter(0), fetched))
        self.json_type = np.array([-1 if code is None else code for code in map(itemgetter(3), fetched)], np.int64)
        self.numbers = np.array(list(map(itemgetter(4), fetched)), dtype=np.float64)
        self.member = np.array(list(map(itemgetter(6), fetched)), dtype=np.int64)
        # Traces numbered in order of appearance (a dict is far faster than sorting 100,000 strings).
        codes: dict[str, int] = {}
        self.trace = np.fromiter((codes.setdefault(t, len(codes)) for t in self.trace_ids), np.int64, self.size)
        self.traces = np.array(list(codes), dtype=object)
        self.item = self.trace
        spans = list(map(itemgetter(1), fetched))
        if any(spans):
            span_codes: dict[str, int] = {"": 0}
            span = np.fromiter((span_codes.setdefault(s or "", len(span_codes)) for s in spans), np.int64, self.size)
            self.item = self.trace * len(span_codes) + span

    def column(self, index: int, rows: np.ndarray) -> list:
        """Column `index` of the query (2: assessment id, 1: span id, 7: source id) at `rows`."""
        return [self.rows[row][index] for row in rows.tolist()]

    def typed(self, index: int, json_type: str) -> np.ndarray:
        """Positions of series `index`'s rows of `json_type`."""
        return np.flatnonzero((self.member & (1 << index) > 0) & (self.json_type == JSON_TYPES.index(json_type)))

    def type_counts(self, index: int) -> dict[str, tuple[int, int]]:
        """{JSON type: (values, traces)} of series `index`, for the types agreement reads."""
        counts = {}
        for json_type in JSON_TYPES:
            rows = self.typed(index, json_type)
            if len(rows):
                counts[json_type] = (len(rows), int(np.count_nonzero(np.bincount(self.trace[rows]))))
        return counts

    def values(self, rows: np.ndarray, scale: Scale) -> list:
        """The values of `rows` as the scale reads them: text for categories, else numbers."""
        if scale.type == "category":
            return self.column(5, rows)
        return self.numbers[rows].tolist()


def _matched(rows: _SeriesRows, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of an A row and a B row on the same trace and span (not one assessment with
    itself): positions into `rows`, in A's order."""
    order = np.argsort(rows.item[b], kind="stable")
    sorted_b = rows.item[b][order]
    low = np.searchsorted(sorted_b, rows.item[a], side="left")
    partners = np.searchsorted(sorted_b, rows.item[a], side="right") - low
    first = np.repeat(np.cumsum(partners) - partners, partners)
    position = np.repeat(low, partners) + np.arange(int(partners.sum())) - first
    pair_a, pair_b = np.repeat(a, partners), b[order[position]]
    keep = pair_a != pair_b
    return pair_a[keep], pair_b[keep]


def _declared_scale(experiment: Experiment, name: str, field: str) -> Scale | None:
    """The scale a definition declares for `name`, None without one; ValidationError (keyed by
    `field`) for a type without agreement statistics."""
    rule = rules_for(experiment.pk).rules.get(name)
    if rule is None or rule.kind != "feedback":
        return None
    constraints = rule.constraints
    if rule.type == "boolean":
        return Scale("boolean", (False, True))
    if rule.type == "category" and not constraints.get("multiple"):
        return Scale("category", tuple(option["value"] for option in constraints["options"]))
    if rule.type == "number":
        low, high = constraints.get("min"), constraints.get("max")
        if constraints.get("integer") and low is not None and high is not None and high - low < MAX_LEVELS:
            return Scale("ordinal", tuple(range(int(low), int(high) + 1)))
        return Scale("ordinal" if constraints.get("integer") else "number")
    kind = "multiple-choice category" if rule.type == "category" else rule.type
    raise ValidationError(
        {field: f"{name} is defined as {kind}; agreement needs boolean, category or number feedback."}
    )


def scale_of(experiment: Experiment, series: Series, counts: dict, field: str) -> Scale:
    """The series' scale: from its name's definition, else from its values' most common type."""
    declared = _declared_scale(experiment, series.name, field)
    if declared is not None:
        return declared
    typed = {TYPE_OF_JSON[json_type]: n for json_type, (n, _) in counts.items() if json_type in TYPE_OF_JSON}
    if not typed:
        raise ValidationError({field: f"{series.label} has no boolean, number or text feedback here."})
    return Scale(max(typed, key=typed.get))


def common_scale(a: Scale, b: Scale, labels_a=(), labels_b=()) -> Scale:
    """The scale both series are compared on; ValidationError when their types differ."""
    if a.type != b.type:
        if {a.type, b.type} == {"ordinal", "number"}:
            return Scale("number")
        raise ValidationError({"b": f"A is {a.type} feedback and B is {b.type}; agreement needs the same type."})
    if a.type == "number":
        return a
    if a.type == "ordinal" and not (a.labels and b.labels and a.labels == b.labels):
        return Scale("ordinal")
    labels = list(dict.fromkeys([*a.labels, *b.labels]))
    return Scale(a.type, tuple(labels))


def _estimate(estimate: statistics.Estimate | None, *, banded: bool = False) -> dict | None:
    if estimate is None:
        return None
    result = {"value": estimate.value, "ci95": list(estimate.ci95) if estimate.ci95 else None}
    if banded:
        result["band"] = estimate.band
    return result


def _fit_levels(scale: Scale, values: list) -> Scale:
    """An integer scale is read as numbers when some values are not whole, or when it has no
    declared bounds and its values span more than MAX_LEVELS levels."""
    if scale.type != "ordinal" or not values:
        return scale
    numbers = np.asarray(values, dtype=np.float64)
    if (numbers != np.round(numbers)).any():
        return Scale("number")  # written before the definition said integers
    if not scale.labels and numbers.max() - numbers.min() >= MAX_LEVELS:
        return Scale("number")
    return scale


def _codes(values: list, scale: Scale) -> tuple[np.ndarray, tuple]:
    """Label codes of `values` on the scale, and the labels (extended by values it lacks)."""
    if not values:
        return np.zeros(0, dtype=np.int64), scale.labels
    if scale.type == "boolean":
        return np.asarray(values, dtype=np.float64).astype(np.int64), (False, True)
    if scale.type == "ordinal":
        numbers = np.asarray(values, dtype=np.float64)
        low = min(int(numbers.min()), scale.labels[0]) if scale.labels else int(numbers.min())
        high = max(int(numbers.max()), scale.labels[-1]) if scale.labels else int(numbers.max())
        return (numbers - low).astype(np.int64), tuple(range(low, high + 1))
    labels = list(scale.labels)
    index = {label: position for position, label in enumerate(labels)}
    for value in sorted(set(values) - set(index)):
        index[value] = len(labels)
        labels.append(value)
    return np.fromiter((index[value] for value in values), dtype=np.int64, count=len(values)), tuple(labels)


def agreement(experiment: Experiment, a: Series, b: Series) -> dict:
    """Agreement between series A and B (see the module docstring): n, coverage, percent
    agreement and the statistics of their type with 95% intervals, the confusion matrix of label
    types (each cell with its traces) and the largest disagreements.

    Queries: the definitions (cached per worker), both series' rows, and the disagreements'
    details. ValidationError for series that cannot be compared."""
    rows = _SeriesRows(experiment, a, b)
    counts_a, counts_b = rows.type_counts(0), rows.type_counts(1)
    scale = common_scale(scale_of(experiment, a, counts_a, "a"), scale_of(experiment, b, counts_b, "b"))
    if scale.type == "ordinal" and not scale.labels:
        # Integer feedback without a bounded definition: its levels are the values seen.
        scale = Scale("ordinal")
    json_type = JSON_TYPE[scale.type]
    pair_a, pair_b = _matched(rows, rows.typed(0, json_type), rows.typed(1, json_type))
    traces_a, traces_b = counts_a.get(json_type, (0, 0))[1], counts_b.get(json_type, (0, 0))[1]
    # Matched traces numbered 0 … N-1 (in order of first appearance in the fetched rows).
    matched, cluster = np.unique(rows.trace[pair_a], return_inverse=True)
    cluster = cluster.reshape(-1)
    trace_ids = rows.traces[matched]
    n = len(pair_a)
    result = {
        "a": a.as_dict(),
        "b": b.as_dict(),
        "type": scale.type,
        "n": n,
        "n_traces": len(trace_ids),
        "coverage": {
            "a": len(trace_ids) / traces_a if traces_a else None,
            "b": len(trace_ids) / traces_b if traces_b else None,
            "a_traces": traces_a,
            "b_traces": traces_b,
        },
    }
    values_a, values_b = rows.values(pair_a, scale), rows.values(pair_b, scale)
    scale = _fit_levels(scale, values_a + values_b)
    result["type"] = scale.type
    if scale.is_label:
        codes, labels = _codes(values_a + values_b, scale)
        code_a, code_b = codes[:n], codes[n:]
        stats = statistics.label_agreement(Pairs(cluster, code_a, code_b), len(labels), ordinal=scale.type == "ordinal")
        result["labels"] = list(labels)
        result["confusion"] = _confusion_cells(trace_ids, cluster, code_a, code_b, labels)
        distance = np.abs(code_a - code_b).astype(np.float64) if scale.type == "ordinal" else (code_a != code_b) * 1.0
    else:
        number_a, number_b = rows.numbers[pair_a], rows.numbers[pair_b]
        stats = statistics.number_agreement(Pairs(cluster, number_a, number_b))
        distance = np.abs(number_a - number_b)
    percent = stats.pop("percent_agreement", None)
    stats.pop("n")
    result["percent_agreement"] = percent.value if percent else None
    result["percent_agreement_ci95"] = list(percent.ci95) if percent and percent.ci95 else None
    for name, estimate in stats.items():
        result[name] = _estimate(estimate, banded=name.endswith("kappa"))
    result["disagreements"] = _disagreements(rows, pair_a, pair_b, distance, scale)
    return result


def _confusion_cells(trace_ids, cluster, code_a, code_b, labels) -> list[dict]:
    """The non-empty cells of the confusion matrix, each with its pairs and its traces (sorted)."""
    k = len(labels)
    cell = code_a * k + code_b
    cells = []
    for value, count in zip(*np.unique(cell, return_counts=True), strict=True):
        traces = np.unique(cluster[cell == value])
        cells.append(
            {
                "a": labels[int(value) // k],
                "b": labels[int(value) % k],
                "count": int(count),
                "trace_ids": sorted(trace_ids[traces].tolist()),
            }
        )
    return cells


def _disagreements(rows: _SeriesRows, pair_a, pair_b, distance: np.ndarray, scale: Scale) -> list[dict]:
    """The pairs that disagree most (ties by trace id, then the assessment ids, so the list is
    the same on every load), with both sides' source and rationale (one query)."""
    disagreeing = np.flatnonzero(distance > 0)
    if not len(disagreeing):
        return []
    if len(disagreeing) > DISAGREEMENTS:
        threshold = np.partition(distance[disagreeing], -DISAGREEMENTS)[-DISAGREEMENTS]
        disagreeing = disagreeing[distance[disagreeing] >= threshold]
    # Sorted by numpy on fixed-width strings (nominal labels can tie thousands of pairs).
    trace_ids = np.array(rows.column(0, pair_a[disagreeing]), dtype=str)
    ids_a = np.array(rows.column(2, pair_a[disagreeing]), dtype=str)
    ids_b = np.array(rows.column(2, pair_b[disagreeing]), dtype=str)
    order = np.lexsort((ids_b, ids_a, trace_ids, -distance[disagreeing]))[:DISAGREEMENTS]
    top = disagreeing[order].tolist()
    top_a, top_b = ids_a[order].tolist(), ids_b[order].tolist()
    wanted = set(top_a) | set(top_b)
    details = {
        row["assessment_id"]: row
        for row in Assessment.objects.filter(assessment_id__in=wanted).values(
            "assessment_id", "trace_id", "span_id", "value", "source_type", "source_id", "rationale"
        )
    }
    result = []
    for index, id_a, id_b in zip(top, top_a, top_b, strict=True):
        a, b = details[id_a], details[id_b]
        result.append(
            {
                "trace_id": a["trace_id"],
                "span_id": a["span_id"] or None,
                "distance": float(distance[index]) if scale.type != "category" and scale.type != "boolean" else None,
                "a": {key: a[key] for key in ("assessment_id", "value", "source_type", "source_id", "rationale")},
                "b": {key: b[key] for key in ("assessment_id", "value", "source_type", "source_id", "rationale")},
            }
        )
    return result


# --- reviewers ---------------------------------------------------------------------------------


LEVEL = {"boolean": "nominal", "category": "nominal", "ordinal": "ordinal", "number": "interval"}


def reviewer_agreement(experiment: Experiment, name: str, queue_id: str = "") -> dict:
    """Agreement between the human reviewers (source ids of HUMAN feedback) of `name`, optionally
    within a queue: Krippendorff's α at the level of the name's type, Fleiss' κ for labels when
    every item has the same number of ratings, and each pair of reviewers' agreement. An item is
    a trace (or a span of it); a reviewer's latest rating of an item counts. Reviewers are listed
    busiest first (ties by source id).

    Queries: the definitions (cached), the ratings, and the order of the ratings a reviewer gave
    one item more than once (only when there are any)."""
    series = Series(name, Assessment.SourceType.HUMAN, "", queue_id)
    rows = _SeriesRows(experiment, series, reviewers=True)
    scale = scale_of(experiment, series, rows.type_counts(0), "name")
    typed = rows.typed(0, JSON_TYPE[scale.type])
    names: dict[str, int] = {}
    reviewer = np.fromiter((names.setdefault(source_id, len(names)) for source_id in rows.column(7, typed)), np.int64)
    typed, reviewer = _latest_ratings(rows, typed, reviewer, len(names))
    units, unit = np.unique(rows.item[typed], return_inverse=True)
    unit = unit.reshape(-1)
    # Reviewers busiest first, ties by source id; codes renumbered in that order.
    per_reviewer = np.bincount(reviewer, minlength=len(names))
    ranked = sorted(names, key=lambda source_id: (-per_reviewer[names[source_id]], source_id))
    renumber = np.empty(len(names), dtype=np.int64)
    renumber[[names[source_id] for source_id in ranked]] = np.arange(len(ranked))
    reviewer = renumber[reviewer]
    result = {
        "name": name,
        "queue_id": queue_id or None,
        "type": scale.type,
        "level": LEVEL[scale.type],
        "reviewers": [{"source_id": source_id, "n": int(per_reviewer[names[source_id]])} for source_id in ranked],
        "n_ratings": len(typed),
    }
    values = rows.values(typed, scale)
    scale = _fit_levels(scale, values)
    result["type"], result["level"] = scale.type, LEVEL[scale.type]
    if scale.is_label and values:
        codes, labels = _codes(values, scale)
        k = len(labels)
        alpha, items = statistics.krippendorff_alpha(unit, codes, LEVEL[scale.type], k)
        fleiss, reason = statistics.fleiss_kappa(unit, codes, k)
        result["labels"] = list(labels)
    else:
        codes, k = np.asarray(values, dtype=np.float64), 0
        alpha, items = statistics.krippendorff_alpha(unit, codes, "interval")
        fleiss, reason = None, "Fleiss' κ needs labels; this name holds numbers" if values else "no ratings"
    result["n_items"] = items
    result["krippendorff_alpha"] = _estimate(alpha, banded=True)
    result["fleiss_kappa"] = _estimate(fleiss, banded=True)
    result["fleiss_kappa_note"] = reason
    result["pairs"] = _reviewer_pairs(ranked[:MAX_REVIEWERS], reviewer, unit, len(units), codes, scale, k)
    return result


def _latest_ratings(rows: _SeriesRows, typed: np.ndarray, reviewer: np.ndarray, reviewers: int):
    """`typed` (row positions) and `reviewer` (codes) reduced to each reviewer's latest rating of
    each item: the last by create time, then assessment id. The ratings are fetched unordered
    (sorting them all in SQL cost more than the rest); the few items a reviewer rated twice get
    their order from one more query."""
    key = rows.item[typed] * max(reviewers, 1) + reviewer
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    repeated = np.flatnonzero(sorted_key[1:] == sorted_key[:-1])
    if not len(repeated):
        return typed, reviewer
    twice = np.isin(key, sorted_key[repeated])
    ids = rows.column(2, typed[twice])
    rank = {
        assessment_id: position
        for position, assessment_id in enumerate(
            Assessment.objects.filter(assessment_id__in=ids)
            .order_by("create_time", "assessment_id")
            .values_list("assessment_id", flat=True)
        )
    }
    when = np.zeros(len(typed), dtype=np.int64)
    when[twice] = [rank[assessment_id] for assessment_id in ids]
    order = np.lexsort((when, key))
    last = np.r_[key[order][1:] != key[order][:-1], True]
    keep = np.sort(order[last])
    return typed[keep], reviewer[keep]


def _reviewer_pairs(
    reviewers: list[str], reviewer: np.ndarray, unit: np.ndarray, units: int, codes: np.ndarray, scale: Scale, k: int
) -> list[dict]:
    """Each pair of reviewers (the MAX_REVIEWERS busiest, coded 0 … in the order of `reviewers`)
    with items in common: n, percent agreement and Cohen's κ (ordinal: quadratic-weighted;
    numbers: Pearson's r)."""
    shown = reviewer < len(reviewers)
    rated = np.zeros((len(reviewers), units), dtype=bool)
    rated[reviewer[shown], unit[shown]] = True
    given = np.zeros((len(reviewers), units), dtype=np.float64)
    given[reviewer[shown], unit[shown]] = codes[shown]
    pairs = []
    for first in range(len(reviewers)):
        for second in range(first + 1, len(reviewers)):
            common = np.flatnonzero(rated[first] & rated[second])
            if not len(common):
                continue
            a, b = given[first, common], given[second, common]
            data = Pairs(np.arange(len(common)), a, b)
            entry = {"a": reviewers[first], "b": reviewers[second], "n": len(common)}
            if scale.is_label:
                stats = statistics.label_agreement(data, k, ordinal=scale.type == "ordinal")
            else:
                stats = statistics.number_agreement(data, spearman=False)
                stats = {key: stats[key] for key in ("percent_agreement", "pearson")}
            stats.pop("n", None)
            entry["percent_agreement"] = stats.pop("percent_agreement").value
            for key, estimate in stats.items():
                entry[key] = _estimate(estimate, banded=key.endswith("kappa"))
            pairs.append(entry)
    return pairs


def series_choices(experiment: Experiment) -> dict:
    """What the page's pickers offer: the feedback names, the source ids, and suggested pairs
    (names rated by both an LLM judge and humans), names with several human reviewers. One query."""
    rows = (
        Assessment.objects.filter(experiment_id=experiment.pk, kind=Assessment.Kind.FEEDBACK, valid=True)
        .order_by("name", "source_type", "source_id")
        .values_list("name", "source_type", "source_id")
        .distinct()[:2000]
    )
    names, source_ids, sources_by_name = [], set(), {}
    for name, source_type, source_id in rows:
        if not names or names[-1] != name:
            names.append(name)
        source_ids.add(source_id)
        sources_by_name.setdefault(name, {}).setdefault(source_type, []).append(source_id)
    suggestions = []
    for name, sources in sources_by_name.items():
        human = Assessment.SourceType.HUMAN
        for judge in sources.get(Assessment.SourceType.LLM_JUDGE, ())[:3]:
            if human in sources:
                suggestions.append((Series(name, Assessment.SourceType.LLM_JUDGE, judge), Series(name, human)))
    multi_rated = [name for name, sources in sources_by_name.items() if len(sources.get("HUMAN", ())) > 1]
    return {
        "names": names,
        "source_ids": sorted(source_id for source_id in source_ids if source_id)[:200],
        "suggestions": suggestions,
        "reviewed_names": multi_rated,
    }
