"""Feedback statistics for the insights page and the metrics API.

Every function reads through `selection` (valid feedback on the scope's traces) and answers with
a fixed number of queries, whatever the number of names, buckets or rows. Counts that the page
links are counts of distinct traces, computed with the same meaning as the filter behind the
link (`links`): a trace with several ratings under a name counts once per bar it matches.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from django.db import connection
from django.db.models import Aggregate, Avg, Count, Exists, FloatField, Max, Min, OuterRef, Q
from django.db.models.expressions import RawSQL

from traces.filters.sql import JSONKeyText, JSONTypeOf, JSONValueText
from traces.models import Span

from . import links, rollup
from .selection import BOOLEAN, CATEGORY, NUMBER, NameType, Scope, feedback_rows, traces_in
from .timerange import BucketStartMs, Window, origin_ms, step_ms

QUANTILES = (0.1, 0.5, 0.9)
HISTOGRAM_BINS = 10
TOP_VALUES = 10
MAX_CATEGORY_BARS = 12


class PercentileCont(Aggregate):
    """PostgreSQL's percentile_cont: linear interpolation between the closest ranks."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        super().__init__(expression, fraction=float(fraction), **extra)


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def quantile(sorted_values: list[float], fraction: float) -> float | None:
    """percentile_cont on a sorted list (the same interpolation as PostgreSQL and numpy)."""
    if not sorted_values:
        return None
    position = fraction * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def _typed(rows):
    return rows.annotate(value_type=JSONTypeOf("value"))


@dataclass
class Bar:
    label: str
    traces: int
    href: str | None
    ratings: int | None = None
    tone: str = ""


@dataclass
class NameStats:
    """One card: a feedback name's numbers over the scope."""

    name_type: NameType
    ratings: int = 0
    traces: int = 0
    valued_traces: int = 0
    coverage: float | None = None
    by_source: dict = field(default_factory=dict)
    href: str | None = None
    positive_rate: float | None = None
    mean: float | None = None
    median: float | None = None
    p10: float | None = None
    p90: float | None = None
    minimum: float | None = None
    maximum: float | None = None
    bars: list[Bar] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.name_type.name


def _href(scope: Scope, *conditions) -> str | None:
    text = links.combine(scope.filter_text, *links.time_range(scope.start, scope.end), *conditions)
    return links.trace_list_url(scope.experiment.pk, text)


def _feedback_field(name: str) -> str | None:
    return links.field("feedback", name)


def _condition(name: str, tail: str) -> str | None:
    fld = _feedback_field(name)
    return None if fld is None else f"{fld} {tail}"


def name_stats(scope: Scope, types: dict[str, NameType]) -> tuple[int, list[NameStats]]:
    """(traces in scope, one NameStats per name in `types` order). Raises FilterError.

    From the rollups where they serve (whole hours, no filter: `rollup.serves`): traces in scope,
    ratings by name, source and value, distinct traces by name and value, then live only the
    histograms of continuous numbers and the names whose values the rollup keys inexactly (one
    query per type present). Live otherwise: traces in scope, counts by name and source, traces
    by name, then one per type present (boolean values, category values, number summary,
    number histogram)."""
    total = rollup.traces_in_hours(scope) if rollup.serves(scope) else traces_in(scope).count()
    stats = {name: NameStats(name_type=typed) for name, typed in types.items()}
    if not stats:
        return total, []
    rows = _typed(feedback_rows(scope, names=stats))
    if rollup.serves(scope):
        live = _stats_from_rollup(scope, rows, stats)
    else:
        live = list(stats)
        _counts(rows, stats)
    for card in stats.values():
        card.coverage = card.valued_traces / total if total else None
        card.href = _href(scope, _condition(card.name, "IS NOT NULL")) if card.traces else None
    by_type = defaultdict(dict)
    for name in live:
        by_type[stats[name].name_type.type][name] = stats[name]
    if by_type[BOOLEAN]:
        _boolean_stats(scope, rows.filter(name__in=list(by_type[BOOLEAN]), value_type="boolean"), by_type[BOOLEAN])
    if by_type[CATEGORY]:
        _category_stats(scope, rows.filter(name__in=list(by_type[CATEGORY]), value_type="string"), by_type[CATEGORY])
    if by_type[NUMBER]:
        _number_stats(scope, rows.filter(name__in=list(by_type[NUMBER]), value_type="number"), by_type[NUMBER])
    return total, list(stats.values())


def _counts(rows, stats: dict[str, NameStats]) -> None:
    """Ratings by name and source, traces and traces with a value by name (two queries)."""
    for row in rows.values("name", "source_type").annotate(n=Count("pk")).order_by():
        card = stats[row["name"]]
        card.by_source[row["source_type"]] = row["n"]
        card.ratings += row["n"]
    valued = ~Q(value_type="null") & Q(value_type__isnull=False)
    for row in (
        rows.values("name")
        .annotate(traces=Count("trace_id", distinct=True), valued=Count("trace_id", distinct=True, filter=valued))
        .order_by()
    ):
        card = stats[row["name"]]
        card.traces, card.valued_traces = row["traces"], row["valued"]


def _stats_from_rollup(scope: Scope, rows, stats: dict[str, NameStats]) -> list[str]:
    """Fill every card's counts and value statistics from the hourly and distinct-trace rollups (two queries; one more for the histograms of
    continuous numbers, read live: a bar counts traces by their lowest and highest rating).
    Returns the names whose value statistics are to be read live: categories and integer scales
    with values the rollup keys inexactly (strings beyond 200 characters, fractions on a scale)."""
    merged = defaultdict(rollup.Tally)
    for (name, _, source), tally in rollup.tallies(scope, stats, step_ms=None, by_source=True, medians=True).items():
        card = stats[name]
        card.by_source[source] = tally.n
        card.ratings += tally.n
        merged[name].add(tally)
    traces = rollup.distinct_traces(scope, stats)
    live, continuous = [], []
    for name, card in stats.items():
        card.traces, card.valued_traces = traces.get((name, ""), 0), traces.get((name, "~"), 0)
        tally, kind = merged[name], card.name_type.type
        if tally.inexact and (kind == CATEGORY or card.name_type.is_scale):
            live.append(name)
        elif kind == BOOLEAN:
            card.positive_rate = tally.positive_rate
            card.bars = [
                Bar(label, traces.get((name, f"b:{label}"), 0), _href(scope, _condition(name, f"= {label}")), n, tone)
                for label, n, tone in (("true", tally.ups, "up"), ("false", tally.booleans - tally.ups, "down"))
            ]
        elif kind == CATEGORY:
            found = sorted(tally.counts.items(), key=lambda item: (-item[1], item[0]))
            labels = list(card.name_type.options) + [text for text, _ in found if text not in card.name_type.options]
            card.bars = [
                Bar(
                    text,
                    traces.get((name, f"s:{text}"), 0),
                    _href(scope, _condition(name, f"= {links.quote(text)}")),
                    tally.counts.get(text, 0),
                )
                for text in labels[:MAX_CATEGORY_BARS]
            ]
        elif kind == NUMBER and tally.numbers:
            # Exact where every value is on the rollup's grid (insights 0004), else to the grid.
            card.mean = tally.mean
            card.minimum = min(number for number, count in tally.values if count)
            card.maximum = max(number for number, count in tally.values if count)
            card.p10, card.median, card.p90 = (tally.quantile(q) for q in QUANTILES)
            if card.name_type.is_scale:
                ratings = defaultdict(int)
                for number, count in tally.values:
                    ratings[number] += count
                typed = card.name_type
                card.bars = [
                    Bar(
                        _level_label(point, typed),
                        traces.get((name, f"n:{point}"), 0),
                        _href(scope, _condition(name, f"= {point}")),
                        ratings.get(float(point), 0),
                    )
                    for point in range(int(typed.minimum), int(typed.maximum) + 1)
                ]
            else:
                continuous.append(card)
        elif kind == NUMBER and card.name_type.is_scale:
            live.append(name)  # no numbers: the live read draws the empty scale
    if continuous:
        names = [card.name for card in continuous]
        _histograms_from_rollup(scope, rows.filter(name__in=names, value_type="number"), continuous, merged)
    return live


def _boolean_stats(scope: Scope, rows, stats: dict[str, NameStats]) -> None:
    found = defaultdict(dict)
    for row in (
        rows.values("name", "numeric_value").annotate(n=Count("pk"), traces=Count("trace_id", distinct=True)).order_by()
    ):
        found[row["name"]][row["numeric_value"] == 1.0] = row
    for name, values in found.items():
        card = stats[name]
        ups = values.get(True, {}).get("n", 0)
        downs = values.get(False, {}).get("n", 0)
        card.positive_rate = ups / (ups + downs) if ups + downs else None
    for card in stats.values():
        if card.name_type.type != BOOLEAN:
            continue
        values = found.get(card.name, {})
        card.bars = [
            Bar(
                label,
                values.get(flag, {}).get("traces", 0),
                _href(scope, _condition(card.name, f"= {links.literal(flag)}")),
                values.get(flag, {}).get("n", 0),
                "up" if flag else "down",
            )
            for flag, label in ((True, "true"), (False, "false"))
        ]


def _category_stats(scope: Scope, rows, stats: dict[str, NameStats]) -> None:
    found = defaultdict(dict)
    for row in (
        rows.values("name", text=JSONValueText("value"))
        .annotate(n=Count("pk"), traces=Count("trace_id", distinct=True))
        .order_by("name", "-n", "text")
    ):
        found[row["name"]][row["text"]] = row
    for card in stats.values():
        if card.name_type.type != CATEGORY:
            continue
        values = found.get(card.name, {})
        labels = list(card.name_type.options) + [text for text in values if text not in card.name_type.options]
        card.bars = [
            Bar(
                text,
                values.get(text, {}).get("traces", 0),
                _href(scope, _condition(card.name, f"= {links.quote(text)}")),
                values.get(text, {}).get("n", 0),
            )
            for text in labels[:MAX_CATEGORY_BARS]
        ]


def _number_stats(scope: Scope, rows, stats: dict[str, NameStats]) -> None:
    summary = {"mean": Avg("numeric_value"), "lo": Min("numeric_value"), "hi": Max("numeric_value")}
    if _postgres():
        summary.update({f"q{i}": PercentileCont("numeric_value", q) for i, q in enumerate(QUANTILES)})
    for row in rows.values("name").annotate(**summary).order_by():
        card = stats[row["name"]]
        card.mean, card.minimum, card.maximum = row["mean"], row["lo"], row["hi"]
        if _postgres():
            card.p10, card.median, card.p90 = row["q0"], row["q1"], row["q2"]
    if not _postgres():
        values = defaultdict(list)
        for name, number in rows.values_list("name", "numeric_value").order_by("name", "numeric_value"):
            values[name].append(number)
        for name, numbers in values.items():
            card = stats[name]
            card.p10, card.median, card.p90 = (quantile(numbers, q) for q in QUANTILES)
    scales = [name for name, card in stats.items() if card.name_type.type == NUMBER and card.name_type.is_scale]
    continuous = [name for name, card in stats.items() if card.name_type.type == NUMBER and not card.name_type.is_scale]
    if scales:
        counts = defaultdict(dict)
        for row in (
            rows.filter(name__in=scales)
            .values("name", "numeric_value")
            .annotate(n=Count("pk"), traces=Count("trace_id", distinct=True))
            .order_by()
        ):
            counts[row["name"]][row["numeric_value"]] = row
        for name in scales:
            card, typed = stats[name], stats[name].name_type
            card.bars = [
                Bar(
                    _level_label(point, typed),
                    counts[name].get(float(point), {}).get("traces", 0),
                    _href(scope, _condition(name, f"= {point}")),
                    counts[name].get(float(point), {}).get("n", 0),
                )
                for point in range(int(typed.minimum), int(typed.maximum) + 1)
            ]
    if continuous:
        _histograms(scope, rows.filter(name__in=continuous), [stats[name] for name in continuous])


def _level_label(point: int, typed: NameType) -> str:
    text = typed.levels.get(str(point))
    return f"{point} · {text}" if text else str(point)


def _edges(low: float, high: float) -> list[float]:
    """Edges of equal width on the rollup's grid of hundredths (so that its keys split as the
    values do): `low` floored, `high` raised, the width rounded up; the last bin ends at `high`."""
    hundredth = Decimal("0.01")
    first = Decimal(format(low, ".15g")).quantize(hundredth, rounding=ROUND_FLOOR)
    last = Decimal(format(high, ".15g")).quantize(hundredth, rounding=ROUND_CEILING)
    if last <= first:
        return [float(first), float(first)]
    width = max(((last - first) / HISTOGRAM_BINS).quantize(hundredth, rounding=ROUND_CEILING), hundredth)
    edges = []
    while first + len(edges) * width < last:
        edges.append(float(first + len(edges) * width))
    return edges + [float(last)]


def _bounds(card: NameStats, low: float, high: float) -> list[float]:
    """The histogram's edges: between the definition's bounds, else the data's `low`, `high`."""
    typed = card.name_type
    low = typed.minimum if typed.minimum is not None and typed.minimum <= low else low
    high = typed.maximum if typed.maximum is not None and typed.maximum >= high else high
    return _edges(low, high)


def _bar(scope: Scope, card: NameStats, lo: float, hi: float, last: bool, count: int) -> Bar:
    lo_text, hi_text = links.literal(lo), links.literal(hi)
    tail = f"<= {hi_text}" if last else f"< {hi_text}"
    condition = links.combine("", _condition(card.name, f">= {lo_text}"), _condition(card.name, tail))
    return Bar(f"{lo_text}–{hi_text}", count, _href(scope, condition))


def _histograms_from_rollup(scope: Scope, rows, cards: list[NameStats], tallies: dict) -> None:
    """The histograms of `_histograms` from the hourly rollup's ratings per grid key (edges on the
    grid split keys as they split values), corrected for the traces rated more than once under
    the name, read live (index insights_trace_values_multi): each such trace's ratings are taken
    out of their bins and the trace counted once per bin its lowest and highest rating reach.
    One query."""
    names = [card.name for card in cards]
    multi = defaultdict(list)
    for name, trace_id, number in rows.filter(
        trace_id__in=RawSQL(
            "SELECT trace_id FROM insights_trace_values WHERE key = '' AND m > 1 AND name = ANY(%s)", (names,)
        )
    ).values_list("name", "trace_id", "numeric_value"):
        multi[(name, trace_id)].append(number)
    for card in cards:
        tally = tallies[card.name]
        keys = [(number, count) for number, count in tally.values if count]
        low = min(number for number, _ in keys)
        top = max(number for number, _ in keys)
        edges = _bounds(card, low, top + 0.01 if tally.off_grid.get(top) else top)
        counts = [0] * max(len(edges) - 1, 1)

        def index(number, edges=edges, counts=counts):
            return min(max(bisect_right(edges, number) - 1, 0), len(counts) - 1)

        for number, count in keys:
            counts[index(number)] += count
        for (name, _), numbers in multi.items():
            if name != card.name:
                continue
            for number in numbers:
                counts[index(rollup.grid_key(number))] -= 1
            for i, (lo, hi) in enumerate(zip(edges, edges[1:])):
                last = i == len(counts) - 1
                counts[i] += max(numbers) >= lo and (min(numbers) <= hi if last else min(numbers) < hi)
        for i, (lo, hi) in enumerate(zip(edges, edges[1:])):
            card.bars.append(_bar(scope, card, lo, hi, i == len(counts) - 1, counts[i]))


def _histograms(scope: Scope, rows, cards: list[NameStats]) -> None:
    """Bins of equal width between the definition's bounds (else the data's). A bin counts the
    traces its link yields: `>= lo AND < hi` holds for a trace with some rating >= lo and some
    rating < hi, i.e. max >= lo and min < hi (the last bin includes hi)."""
    lows, highs = defaultdict(list), defaultdict(list)
    for name, low, high in (
        rows.values("name", "trace_id")
        .annotate(lo=Min("numeric_value"), hi=Max("numeric_value"))
        .values_list("name", "lo", "hi")
        .order_by()
    ):
        lows[name].append(low)
        highs[name].append(high)
    for ordered in (*lows.values(), *highs.values()):
        ordered.sort()
    for card in cards:
        if not lows[card.name]:
            continue
        card.minimum, card.maximum = lows[card.name][0], highs[card.name][-1]
        edges = _bounds(card, card.minimum, card.maximum)
        mins, maxes = lows[card.name], highs[card.name]
        for index, (lo, hi) in enumerate(zip(edges, edges[1:])):
            last = index == len(edges) - 2
            # max >= lo and min < hi (<= hi): all but those entirely below lo or above hi (disjoint)
            above = len(mins) - (bisect_right(mins, hi) if last else bisect_left(mins, hi))
            card.bars.append(_bar(scope, card, lo, hi, last, len(mins) - bisect_left(maxes, lo) - above))


# --- trends ------------------------------------------------------------------------------------


@dataclass
class Point:
    start: object
    end: object
    ratings: int
    traces: int | None  # None when read from the rollup, which counts ratings only
    value: float | None
    href: str | None


@dataclass
class Trend:
    name_type: NameType
    points: list[Point]
    current: float | None
    previous: float | None
    current_ratings: int
    previous_ratings: int

    @property
    def name(self) -> str:
        return self.name_type.name

    @property
    def change(self) -> float | None:
        if self.current is None or self.previous is None:
            return None
        return self.current - self.previous


def _value_aggregates() -> dict:
    booleans = Q(value_type="boolean")
    return {
        "n": Count("pk"),
        "traces": Count("trace_id", distinct=True),
        "ups": Count("pk", filter=booleans & Q(numeric_value=1.0)),
        "booleans": Count("pk", filter=booleans),
        "mean": Avg("numeric_value", filter=Q(value_type="number")),
    }


def _headline(typed: NameType, row: dict | None) -> float | None:
    """The number a trend follows: positive rate for booleans, mean for numbers, else ratings."""
    if not row:
        return None
    if typed.type == BOOLEAN:
        return row["ups"] / row["booleans"] if row["booleans"] else None
    if typed.type == NUMBER:
        return row["mean"]
    return float(row["n"])


def trends(scope: Scope, window: Window, types: dict[str, NameType]) -> list[Trend]:
    """Per name: one point per bucket of the window and the headline of this period against the
    previous one. Three queries (buckets, this period, previous period; two from the rollup, which
    reads buckets and this period in one scan). Raises FilterError."""
    if not types:
        return []
    before_scope = scope.shifted(window.previous.start, window.previous.end)
    if rollup.serves(scope) and rollup.serves(before_scope):
        by_bucket, now, before = _trend_rows_from_rollup(scope, before_scope, window, types)
    else:
        by_bucket, now, before = _trend_rows(scope, before_scope, window, types)
    buckets = window.buckets()
    out = []
    for name, typed in types.items():
        points = []
        for lo, hi in buckets:
            row = by_bucket[name].get(_bucket_key(lo, window))
            bucket_scope = scope.shifted(lo, hi)
            points.append(
                Point(
                    lo,
                    hi,
                    row["n"] if row else 0,
                    row["traces"] if row else 0,
                    _headline(typed, row),
                    _href(bucket_scope, _condition(name, "IS NOT NULL")) if row else None,
                )
            )
        out.append(
            Trend(
                typed,
                points,
                _headline(typed, now.get(name)),
                _headline(typed, before.get(name)),
                now.get(name, {}).get("n", 0),
                before.get(name, {}).get("n", 0),
            )
        )
    return out


def _trend_rows(scope: Scope, before_scope: Scope, window: Window, types) -> tuple:
    rows = _typed(feedback_rows(scope, names=types))
    bucket = BucketStartMs(
        "trace__request_time", step_ms=step_ms(window.interval), origin_ms=origin_ms(window.interval)
    )
    by_bucket = defaultdict(dict)
    for row in rows.annotate(bucket=bucket).values("name", "bucket").annotate(**_value_aggregates()).order_by():
        by_bucket[row["name"]][row["bucket"]] = row
    now = {row["name"]: row for row in rows.values("name").annotate(**_value_aggregates()).order_by()}
    before_rows = _typed(feedback_rows(before_scope, names=types))
    before = {row["name"]: row for row in before_rows.values("name").annotate(**_value_aggregates()).order_by()}
    return by_bucket, now, before


def _tally_row(tally) -> dict:
    """A rollup tally in the shape of a live aggregate row (no distinct traces: None)."""
    return {"n": tally.n, "traces": None, "ups": tally.ups, "booleans": tally.booleans, "mean": tally.mean}


def _trend_rows_from_rollup(scope: Scope, before_scope: Scope, window: Window, types) -> tuple:
    """The same rows from the hourly rollup: buckets and this period in one scan, then the
    previous period (two queries)."""
    by_bucket, now = defaultdict(dict), {}
    for (name, bucket_ms, _), tally in rollup.tallies(
        scope, types, step_ms=step_ms(window.interval), origin_ms=origin_ms(window.interval), totals=True
    ).items():
        if bucket_ms is None:
            now[name] = _tally_row(tally)
        else:
            by_bucket[name][bucket_ms] = _tally_row(tally)
    before = {name: _tally_row(t) for (name, _, _), t in rollup.tallies(before_scope, types, step_ms=None).items()}
    return by_bucket, now, before


def _bucket_key(moment, window: Window) -> int:
    """The bucket-start key (epoch ms) of the bucket containing `moment`."""
    step, origin = step_ms(window.interval), origin_ms(window.interval)
    ms = links.epoch_ms(moment)
    return (ms - origin) // step * step + origin


# --- breakdown ---------------------------------------------------------------------------------


@dataclass
class BreakdownRow:
    value: str
    traces: int
    ratings: int
    headline: float | None
    href: str | None

    @property
    def label(self) -> str:
        return self.value


def parse_dimension(text: str) -> tuple[str, str]:
    """`tag:<key>`, `metadata:<key>` or `span` → (kind, key); ValueError with a message otherwise."""
    text = (text or "").strip()
    if text == "span":
        return "span", ""
    kind, _, key = text.partition(":")
    if kind in ("tag", "metadata") and key:
        return kind, key
    raise ValueError("must be tag:<key>, metadata:<key> or span")


def breakdown(scope: Scope, typed: NameType, dimension: tuple[str, str]) -> list[BreakdownRow]:
    """The top values of a tag, a metadata key or span name among the scope's traces rated under
    `typed.name`, with that name's headline per value. Two queries. Raises FilterError."""
    kind, key = dimension
    rows = _typed(feedback_rows(scope, names=[typed.name]))
    if kind == "span":
        spans = (
            Span.objects.filter(trace_id__in=rows.values("trace_id"))
            .values("name")
            .annotate(traces=Count("trace_id", distinct=True))
        )
        top = [row["name"] for row in spans.order_by("-traces", "name")[:TOP_VALUES]]
        aggregates = {}
        for index, value in enumerate(top):
            has = Q(Exists(Span.objects.filter(trace_id=OuterRef("trace_id"), name=value)))
            aggregates.update(
                {
                    f"n{index}": Count("pk", filter=has),
                    f"traces{index}": Count("trace_id", distinct=True, filter=has),
                    f"ups{index}": Count("pk", filter=has & Q(value_type="boolean", numeric_value=1.0)),
                    f"booleans{index}": Count("pk", filter=has & Q(value_type="boolean")),
                    f"mean{index}": Avg("numeric_value", filter=has & Q(value_type="number")),
                }
            )
        found = rows.aggregate(**aggregates) if aggregates else {}
        result = []
        for index, value in enumerate(top):
            row = {name: found[f"{name}{index}"] for name in ("n", "traces", "ups", "booleans", "mean")}
            condition = links.combine("", _condition(typed.name, "IS NOT NULL"), f"span.name = {links.quote(value)}")
            result.append(BreakdownRow(value, row["traces"], row["n"], _headline(typed, row), _href(scope, condition)))
        return result
    column = JSONKeyText("trace__tags" if kind == "tag" else "trace__metadata", key)
    entity = "tags" if kind == "tag" else "metadata"
    grouped = (
        rows.annotate(dimension=column)
        .filter(dimension__isnull=False)
        .values("dimension")
        .annotate(**_value_aggregates())
        .order_by("-traces", "dimension")[:TOP_VALUES]
    )
    result = []
    for row in grouped:
        fld = links.field(entity, key)
        equals = None if fld is None else f"{fld} = {links.quote(row['dimension'])}"
        condition = links.combine("", _condition(typed.name, "IS NOT NULL"), equals) if equals else None
        result.append(
            BreakdownRow(row["dimension"], row["traces"], row["n"], _headline(typed, row), _href(scope, condition))
        )
    return result


def dimension_choices(scope: Scope) -> dict[str, list[str]]:
    """Tag and metadata keys seen on the scope's most recent traces (a sample of 500), for the
    breakdown picker. One query."""
    sample = traces_in(scope).order_by("-request_time").values_list("tags", "metadata")[:500]
    tags, metadata = set(), set()
    for tag_map, meta_map in sample:
        tags.update((tag_map or {}).keys())
        metadata.update((meta_map or {}).keys())
    return {
        "tag": sorted(k for k in tags if not k.startswith("mlflow.")),
        "metadata": sorted(k for k in metadata if not k.startswith("mlflow.")),
    }
