"""Reads behind the agreement page and API: which series to compare, their type, the matched
pairs (one query) and the reviewers' ratings (one query), turned into statistics.

A *series* is feedback under one name, optionally narrowed to a source type, a source id and a
queue (`metadata["queue_id"]`). Only valid (not overridden) feedback with a value counts.
Two series are matched by trace and span: every A and B assessment on the same trace and the
same span (or both on the trace itself) make a pair; several raters on one trace make several
pairs, and the intervals resample whole traces.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from django.core.exceptions import ValidationError
from django.db import connections
from django.db.models import Count, F, Q, QuerySet, Value
from django.db.models.functions import Coalesce
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


def series_rows(experiment: Experiment, series: Series) -> QuerySet:
    """The valid feedback of a series with a value, annotated with its JSON type."""
    return _feedback(experiment).filter(_condition(series)).order_by()


def _type_counts(experiment: Experiment, *series: Series) -> list[dict[str, tuple[int, int]]]:
    """For each series, {JSON type: (values, traces)} (one query for all)."""
    conditions = [_condition(one) for one in series]
    combined = conditions[0]
    for condition in conditions[1:]:
        combined |= condition
    aggregates = {}
    for index, condition in enumerate(conditions):
        aggregates[f"n{index}"] = Count("pk", filter=condition)
        aggregates[f"t{index}"] = Count("trace_id", distinct=True, filter=condition)
    rows = _feedback(experiment).filter(combined).order_by().values("value_type").annotate(**aggregates)
    counts = [{} for _ in series]
    for row in rows:
        for index in range(len(series)):
            if row[f"n{index}"]:
                counts[index][row["value_type"]] = (row[f"n{index}"], row[f"t{index}"])
    return counts


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


def _typed(rows: QuerySet, scale: Scale) -> QuerySet:
    rows = rows.filter(value_type=JSON_TYPE[scale.type])
    if scale.type == "category":
        return rows.annotate(v=JSONValueText("value"))
    return rows.annotate(v=F("numeric_value"))


def _pair_query(experiment: Experiment, a: Series, b: Series, scale: Scale) -> tuple[str, list]:
    """One SQL statement for the matched pairs: (trace, a id, a value, b id, b value)."""
    compiled = []
    for series in (a, b):
        rows = _typed(series_rows(experiment, series), scale).values(
            t=F("trace_id"), s=Coalesce("span_id", Value("")), i=F("assessment_id"), x=F("v")
        )
        compiled.append(rows.query.sql_with_params())
    (sql_a, params_a), (sql_b, params_b) = compiled
    return (
        f"SELECT a.t, a.i, a.x, b.i, b.x FROM ({sql_a}) AS a JOIN ({sql_b}) AS b"
        f" ON a.t = b.t AND a.s = b.s AND a.i <> b.i",
        [*params_a, *params_b],
    )


def _fetch(sql: str, params: list) -> list[tuple]:
    with connections[Assessment.objects.db].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


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

    Queries: the type counts, the definitions (cached per worker), the pairs, and the
    disagreements' details. ValidationError for series that cannot be compared."""
    counts_a, counts_b = _type_counts(experiment, a, b)
    scale = common_scale(scale_of(experiment, a, counts_a, "a"), scale_of(experiment, b, counts_b, "b"))
    if scale.type == "ordinal" and not scale.labels:
        # Integer feedback without a bounded definition: its levels are the values seen.
        scale = Scale("ordinal")
    rows = _fetch(*_pair_query(experiment, a, b, scale))
    json_type = JSON_TYPE[scale.type]
    traces_a, traces_b = counts_a.get(json_type, (0, 0))[1], counts_b.get(json_type, (0, 0))[1]
    # Trace codes in order of appearance (a dict is far faster than sorting 100,000 strings).
    codes: dict[str, int] = {}
    cluster = np.fromiter((codes.setdefault(row[0], len(codes)) for row in rows), dtype=np.int64, count=len(rows))
    trace_ids = np.array(list(codes), dtype=object)
    result = {
        "a": a.as_dict(),
        "b": b.as_dict(),
        "type": scale.type,
        "n": len(rows),
        "n_traces": len(trace_ids),
        "coverage": {
            "a": len(trace_ids) / traces_a if traces_a else None,
            "b": len(trace_ids) / traces_b if traces_b else None,
            "a_traces": traces_a,
            "b_traces": traces_b,
        },
    }
    values_a = [row[2] for row in rows]
    values_b = [row[4] for row in rows]
    scale = _fit_levels(scale, values_a + values_b)
    result["type"] = scale.type
    if scale.is_label:
        codes, labels = _codes(values_a + values_b, scale)
        code_a, code_b = codes[: len(rows)], codes[len(rows) :]
        stats = statistics.label_agreement(Pairs(cluster, code_a, code_b), len(labels), ordinal=scale.type == "ordinal")
        result["labels"] = list(labels)
        result["confusion"] = _confusion_cells(trace_ids, cluster, code_a, code_b, labels)
        distance = np.abs(code_a - code_b).astype(np.float64) if scale.type == "ordinal" else (code_a != code_b) * 1.0
    else:
        number_a, number_b = np.asarray(values_a, dtype=np.float64), np.asarray(values_b, dtype=np.float64)
        stats = statistics.number_agreement(Pairs(cluster, number_a, number_b))
        distance = np.abs(number_a - number_b)
    percent = stats.pop("percent_agreement", None)
    stats.pop("n")
    result["percent_agreement"] = percent.value if percent else None
    result["percent_agreement_ci95"] = list(percent.ci95) if percent and percent.ci95 else None
    for name, estimate in stats.items():
        result[name] = _estimate(estimate, banded=name.endswith("kappa"))
    result["disagreements"] = _disagreements(rows, distance, scale)
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


def _disagreements(rows: list[tuple], distance: np.ndarray, scale: Scale) -> list[dict]:
    """The pairs that disagree most (nominal labels: disagreeing pairs, newest traces first),
    with both sides' source and rationale (one query)."""
    disagreeing = np.flatnonzero(distance > 0)
    if not len(disagreeing):
        return []
    top = disagreeing[np.argsort(-distance[disagreeing], kind="stable")][:DISAGREEMENTS]
    ids = {rows[i][1] for i in top} | {rows[i][3] for i in top}
    details = {
        row["assessment_id"]: row
        for row in Assessment.objects.filter(assessment_id__in=ids).values(
            "assessment_id", "trace_id", "span_id", "value", "source_type", "source_id", "rationale"
        )
    }
    result = []
    for index in top:
        a, b = details[rows[index][1]], details[rows[index][3]]
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
    a trace (or a span of it); a reviewer's latest rating of an item counts.

    Queries: the type counts, the definitions (cached), the ratings."""
    series = Series(name, Assessment.SourceType.HUMAN, "", queue_id)
    (counts,) = _type_counts(experiment, series)
    scale = scale_of(experiment, series, counts, "name")
    rows = list(
        _typed(series_rows(experiment, series), scale)
        .order_by("create_time", "assessment_id")
        .values_list("trace_id", Coalesce("span_id", Value("")), "source_id", "v")
    )
    latest = {(trace, span, reviewer): value for trace, span, reviewer, value in rows}
    reviewers = Counter(reviewer for _, _, reviewer in latest)
    result = {
        "name": name,
        "queue_id": queue_id or None,
        "type": scale.type,
        "level": LEVEL[scale.type],
        "reviewers": [{"source_id": reviewer, "n": n} for reviewer, n in reviewers.most_common()],
        "n_ratings": len(latest),
    }
    units = {}
    unit = np.fromiter((units.setdefault(key[:2], len(units)) for key in latest), dtype=np.int64, count=len(latest))
    values = list(latest.values())
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
    result["pairs"] = _reviewer_pairs(latest, unit, codes, scale, k)
    return result


def _reviewer_pairs(latest: dict, unit: np.ndarray, codes: np.ndarray, scale: Scale, k: int) -> list[dict]:
    """Each pair of reviewers (the MAX_REVIEWERS busiest) with items in common: n, percent
    agreement and Cohen's κ (ordinal: quadratic-weighted; numbers: Pearson's r)."""
    reviewer_of = np.array([key[2] for key in latest], dtype=object)
    busiest = [reviewer for reviewer, _ in Counter(reviewer_of.tolist()).most_common(MAX_REVIEWERS)]
    by_reviewer = {}
    for reviewer in busiest:
        mine = np.flatnonzero(reviewer_of == reviewer)
        by_reviewer[reviewer] = dict(zip(unit[mine].tolist(), codes[mine].tolist(), strict=True))
    pairs = []
    for position, first in enumerate(busiest):
        for second in busiest[position + 1 :]:
            common = sorted(by_reviewer[first].keys() & by_reviewer[second].keys())
            if not common:
                continue
            a = np.array([by_reviewer[first][item] for item in common])
            b = np.array([by_reviewer[second][item] for item in common])
            data = Pairs(np.arange(len(common)), a, b)
            entry = {"a": first, "b": second, "n": len(common)}
            if scale.is_label:
                stats = statistics.label_agreement(data, k, ordinal=scale.type == "ordinal")
            else:
                stats = statistics.number_agreement(data)
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
