"""Insights statistics: every linked count equals the count of the trace list behind its link."""

from urllib.parse import parse_qs, urlsplit

import pytest

from assessments.insights import selectors
from assessments.insights.selection import Scope, name_types
from assessments.insights.timerange import window_for
from traces import selectors as trace_selectors
from traces.access import Actor

SYSTEM = Actor.for_system("tests")


def listed(experiment, href: str) -> int:
    """How many traces the trace list shows for the link's filter."""
    query = parse_qs(urlsplit(href).query)
    assert urlsplit(href).path == f"/experiments/{experiment.pk}/traces/"
    text = query["filter"][0]
    return trace_selectors.search_traces(SYSTEM, experiment_ids=[experiment.pk], filter_text=text).count()


def scope_for(experiment, now, filter_text=""):
    window = window_for("7d", now=now)
    return window, Scope(experiment, window.start, window.end, filter_text)


@pytest.mark.parametrize("filter_text", ["", "tags.env = 'prod'", "span.name = 'tool_call' OR metadata.topic = 'api'"])
def test_every_card_count_equals_its_trace_list(rated, now, filter_text):
    experiment, _ = rated
    _, scope = scope_for(experiment, now, filter_text)
    total, cards = selectors.name_stats(scope, name_types(experiment))
    assert [card.name for card in cards][:1] == ["helpfulness"]  # definitions first
    checked = 0
    for card in cards:
        if card.href:
            assert listed(experiment, card.href) == card.traces, card.name
            checked += 1
        for bar in card.bars:
            assert listed(experiment, bar.href) == bar.traces, (card.name, bar.label)
            checked += 1
    assert checked > 20


def test_statistics_by_type(rated, now):
    experiment, traces = rated
    _, scope = scope_for(experiment, now)
    total, cards = selectors.name_stats(scope, name_types(experiment))
    by_name = {card.name: card for card in cards}
    assert total == 24
    thumbs = by_name["user_satisfaction"]
    values = [n % 4 != 0 for n in range(24) if n % 5 != 4] + [True] * 4
    assert thumbs.ratings == len(values)
    assert thumbs.positive_rate == pytest.approx(sum(values) / len(values))
    assert thumbs.by_source == {"HUMAN": len(values)}
    assert thumbs.coverage == pytest.approx(len([n for n in range(24) if n % 5 != 4]) / 24)
    relevance = by_name["relevance"]
    numbers = sorted(round(0.1 + (n % 10) * 0.09, 2) for n in range(24))
    import statistics

    assert relevance.mean == pytest.approx(statistics.fmean(numbers))
    assert relevance.median == pytest.approx(statistics.median(numbers))
    assert relevance.by_source == {"LLM_JUDGE": 24}
    assert sum(bar.traces for bar in relevance.bars) >= 24
    assert by_name["tone"].name_type.type == "category" and not by_name["tone"].name_type.defined
    assert [bar.label for bar in by_name["helpfulness"].bars] == ["1", "2", "3", "4", "5"]


def test_trend_points_link_to_their_traces(rated, now):
    experiment, _ = rated
    window, scope = scope_for(experiment, now)
    trends = selectors.trends(scope, window, name_types(experiment))
    thumbs = next(trend for trend in trends if trend.name == "user_satisfaction")
    assert len(thumbs.points) == 7 and window.interval == "day"
    assert sum(point.ratings for point in thumbs.points) == thumbs.current_ratings
    for trend in trends:
        for point in trend.points:
            if point.href and point.traces is not None:  # the rollup (PostgreSQL) counts ratings only
                assert listed(experiment, point.href) == point.traces


@pytest.mark.parametrize("dimension", [("tag", "release"), ("metadata", "topic"), ("span", "")])
def test_breakdown_rows_link_to_their_traces(rated, now, dimension):
    experiment, _ = rated
    _, scope = scope_for(experiment, now, "tags.env = 'prod'")
    typed = name_types(experiment)["user_satisfaction"]
    rows = selectors.breakdown(scope, typed, dimension)
    assert rows
    for row in rows:
        assert listed(experiment, row.href) == row.traces, row.value


def test_query_count_does_not_grow_with_names(rated, now, django_assert_max_num_queries):
    experiment, _ = rated
    window, scope = scope_for(experiment, now)
    types = name_types(experiment)
    with django_assert_max_num_queries(9):
        selectors.name_stats(scope, types)
    with django_assert_max_num_queries(3):
        selectors.trends(scope, window, types)


def test_name_types_of_defined_names_reads_no_values(rated, django_assert_num_queries):
    experiment, _ = rated
    with django_assert_num_queries(1):  # the definitions only
        typed = name_types(experiment, names=["helpfulness"])
    assert list(typed) == ["helpfulness"] and typed["helpfulness"].is_scale
    both = name_types(experiment, names=["helpfulness", "tone"])
    assert both["helpfulness"] == typed["helpfulness"] and both["tone"].type == "category"
