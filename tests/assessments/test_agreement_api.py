"""The agreement API and page on stored feedback: statistics equal the references, confusion
cells list exactly their traces, and each cell's link filters the trace list to exactly them."""

from urllib.parse import parse_qs, urlparse

import krippendorff
import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import cohen_kappa_score

from assessments.definitions import services as definition_services
from traces.access import Actor
from traces.filters import filter_traces
from traces.models import Trace

from ..factories import make_feedback, make_trace

SYSTEM = Actor.for_system("test")


def api(experiment, path="agreement"):
    return f"/api/v1/experiments/{experiment.pk}/{path}"


@pytest.fixture
def judged(experiment):
    """30 traces: the judge says `correct` on all, humans alice and bob on most (both on some)."""
    rng = np.random.default_rng(5)
    truth = rng.random(30) < 0.5
    traces, judge, human = [], [], []
    for index in range(30):
        trace = make_trace(experiment)
        traces.append(trace)
        verdict = bool(truth[index] if rng.random() < 0.85 else not truth[index])
        make_feedback(trace, "correct", verdict, source_type="LLM_JUDGE", source_id="judge-v1")
        make_feedback(trace, "score", float(np.round(rng.random(), 2)), source_type="LLM_JUDGE", source_id="judge-v1")
        for reviewer, rate in (("alice", 0.8), ("bob", 0.5)):
            if rng.random() < rate:
                said = bool(truth[index] if rng.random() < 0.9 else not truth[index])
                make_feedback(trace, "correct", said, source_type="HUMAN", source_id=reviewer)
                judge.append(verdict)
                human.append(said)
    return {"traces": traces, "judge": judge, "human": human}


def test_judge_vs_human_matches_scikit_learn_and_cells_list_their_traces(api_client, experiment, judged):
    response = api_client.get(
        api(experiment), {"a": "correct", "a_source_type": "LLM_JUDGE", "b": "correct", "b_source_type": "HUMAN"}
    )
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["type"] == "boolean"
    assert data["n"] == len(judged["human"])
    assert data["percent_agreement"] == pytest.approx(np.mean(np.array(judged["judge"]) == np.array(judged["human"])))
    assert data["cohen_kappa"]["value"] == pytest.approx(cohen_kappa_score(judged["judge"], judged["human"]), abs=1e-3)
    low, high = data["cohen_kappa"]["ci95"]
    assert low <= data["cohen_kappa"]["value"] <= high
    assert data["cohen_kappa"]["band"] in ("poor", "moderate", "good")
    assert "pearson" not in data and "weighted_kappa" not in data
    assert sum(cell["count"] for cell in data["confusion"]) == data["n"]
    for cell in data["confusion"]:
        expected = {
            trace.trace_id
            for trace in judged["traces"]
            if trace.assessments.filter(name="correct", source_type="LLM_JUDGE", value=cell["a"]).exists()
            and trace.assessments.filter(name="correct", source_type="HUMAN", value=cell["b"]).exists()
        }
        assert set(cell["trace_ids"]) == expected
    assert data["coverage"]["a_traces"] == 30 and data["coverage"]["a"] == data["n_traces"] / 30


def test_numbers_match_scipy(api_client, experiment):
    rng = np.random.default_rng(3)
    a_values, b_values = [], []
    for _ in range(25):
        trace = make_trace(experiment)
        x = float(np.round(rng.random(), 1))
        y = float(np.clip(np.round(x + rng.normal(scale=0.2), 1), 0, 1))
        make_feedback(trace, "relevance", x, source_type="LLM_JUDGE", source_id="judge-v1")
        make_feedback(trace, "relevance", y, source_type="HUMAN", source_id="alice")
        a_values.append(x)
        b_values.append(y)
    data = api_client.get(
        api(experiment), {"a": "relevance", "a_source_id": "judge-v1", "b": "relevance", "b_source_id": "alice"}
    ).json()
    assert data["type"] == "number" and "confusion" not in data and "cohen_kappa" not in data
    assert data["pearson"]["value"] == pytest.approx(pearsonr(a_values, b_values)[0], abs=1e-3)
    assert data["spearman"]["value"] == pytest.approx(spearmanr(a_values, b_values)[0], abs=1e-3)
    assert data["mae"]["value"] == pytest.approx(np.mean(np.abs(np.array(a_values) - b_values)), abs=1e-3)
    distances = [row["distance"] for row in data["disagreements"]]
    assert distances == sorted(distances, reverse=True) and distances[0] == pytest.approx(
        max(abs(x - y) for x, y in zip(a_values, b_values, strict=True))
    )


def test_integer_definition_gives_weighted_kappa_on_its_whole_scale(api_client, experiment):
    definition_services.create_definition(
        experiment=experiment, actor=SYSTEM, name="rating", type="number", min=1, max=5, integer=True
    )
    rng = np.random.default_rng(8)
    a_values, b_values = [], []
    for _ in range(20):
        trace = make_trace(experiment)
        x = int(rng.choice([1, 3, 5]))
        y = int(np.clip(x + rng.choice([-2, 0, 0, 2]), 1, 5))
        make_feedback(trace, "rating", x, source_type="LLM_JUDGE", source_id="judge-v1")
        make_feedback(trace, "rating", y, source_type="HUMAN", source_id="alice")
        a_values.append(x)
        b_values.append(y)
    data = api_client.get(
        api(experiment), {"a": "rating", "a_source_type": "LLM_JUDGE", "b": "rating", "b_source_type": "HUMAN"}
    ).json()
    assert data["type"] == "ordinal" and data["labels"] == [1, 2, 3, 4, 5]
    expected = cohen_kappa_score(a_values, b_values, weights="quadratic", labels=[1, 2, 3, 4, 5])
    assert data["weighted_kappa"]["value"] == pytest.approx(expected, abs=1e-3)
    assert "cohen_kappa" not in data


def test_pairs_match_by_span(api_client, experiment):
    trace = make_trace(experiment, spans=2)
    spans = list(trace.spans.order_by("span_id").values_list("span_id", flat=True))
    make_feedback(trace, "grounded", True, source_type="LLM_JUDGE", source_id="judge-v1", span_id=spans[0])
    make_feedback(trace, "grounded", False, source_type="LLM_JUDGE", source_id="judge-v1", span_id=spans[1])
    make_feedback(trace, "grounded", True, source_type="HUMAN", source_id="alice", span_id=spans[0])
    make_feedback(trace, "grounded", True, source_type="HUMAN", source_id="alice")  # on the trace: no partner
    data = api_client.get(
        api(experiment), {"a": "grounded", "a_source_type": "LLM_JUDGE", "b": "grounded", "b_source_type": "HUMAN"}
    ).json()
    assert data["n"] == 1 and data["percent_agreement"] == 1.0


def test_queue_narrows_to_answers_with_that_queue_id(api_client, experiment):
    for index in range(6):
        trace = make_trace(experiment)
        make_feedback(trace, "correct", True, source_type="LLM_JUDGE", source_id="judge-v1")
        make_feedback(
            trace,
            "correct",
            index % 2 == 0,
            source_type="HUMAN",
            source_id="alice",
            metadata={"queue_id": "7" if index < 3 else "8"},
        )
    data = api_client.get(
        api(experiment), {"a": "correct", "a_source_type": "LLM_JUDGE", "b": "correct", "b_queue_id": "7"}
    ).json()
    assert data["n"] == 3 and data["b"]["queue_id"] == "7"


def test_overridden_and_error_feedback_do_not_count(api_client, experiment):
    from assessments import services

    trace = make_trace(experiment)
    judged = make_feedback(trace, "correct", False, source_type="LLM_JUDGE", source_id="judge-v1")
    services.override(assessment=judged, actor=SYSTEM, channel="api", value=True, source_id="alice")
    make_feedback(
        trace, "correct", None, source_type="HUMAN", source_id="bob", error={"error_code": "X", "error_message": "x"}
    )
    other = make_trace(experiment)
    make_feedback(other, "correct", True, source_type="LLM_JUDGE", source_id="judge-v1")
    make_feedback(other, "correct", True, source_type="HUMAN", source_id="bob")
    query = {"a": "correct", "a_source_type": "LLM_JUDGE", "b": "correct", "b_source_type": "HUMAN"}
    data = api_client.get(api(experiment), query).json()
    # the overridden judge value and the error-only feedback take no part; the override (HUMAN) has no judge
    assert data["n"] == 1 and data["n_traces"] == 1 and data["coverage"]["a_traces"] == 1


@pytest.mark.parametrize(
    "query, field",
    [
        ({}, "a"),
        ({"a": "correct"}, "b"),
        ({"a": "correct", "b": "correct"}, "b"),
        ({"a": "correct", "b": "score"}, "b"),
        ({"a": "correct", "a_source_type": "ROBOT", "b": "x"}, "a_source_type"),
        ({"a": "nothing", "b": "correct"}, "a"),
    ],
)
def test_bad_queries_are_400_naming_the_field(api_client, experiment, judged, query, field):
    response = api_client.get(api(experiment), query)
    assert response.status_code == 400
    assert field in response.json(), response.json()


def test_access(client, experiment, judged, viewer, outsider):
    query = {"a": "correct", "a_source_type": "LLM_JUDGE", "b": "correct", "b_source_type": "HUMAN"}
    client.force_login(outsider)
    assert client.get(api(experiment), query).status_code == 404
    assert client.get(api(experiment, "reviewer-agreement"), {"name": "correct"}).status_code == 404
    client.force_login(viewer)
    assert client.get(api(experiment), query).status_code == 200
    client.logout()
    assert client.get(api(experiment), query).status_code in (401, 403)


def test_query_count_does_not_grow_with_the_data(api_client, experiment, judged, django_assert_max_num_queries):
    query = {"a": "correct", "a_source_type": "LLM_JUDGE", "b": "correct", "b_source_type": "HUMAN"}
    # key (and its last use), experiment, definitions stamp, the two series' rows, the
    # disagreements' details
    with django_assert_max_num_queries(6):
        assert api_client.get(api(experiment), query).status_code == 200
    # key, experiment, definitions stamp, the ratings, the order of repeated ratings (if any)
    with django_assert_max_num_queries(5):
        assert api_client.get(api(experiment, "reviewer-agreement"), {"name": "correct"}).status_code == 200


def test_reviewer_agreement_matches_krippendorff_with_missing_ratings(api_client, experiment):
    rng = np.random.default_rng(2)
    reviewers = ["alice", "bob", "carol"]
    data = np.full((3, 24), np.nan)
    for item in range(24):
        trace = make_trace(experiment)
        truth = rng.choice(["fine", "wrong", "partial"])
        for row, reviewer in enumerate(reviewers):
            if rng.random() < 0.75:
                said = truth if rng.random() < 0.7 else str(rng.choice(["fine", "wrong", "partial"]))
                make_feedback(trace, "verdict", said, source_type="HUMAN", source_id=reviewer)
                data[row, item] = ["fine", "partial", "wrong"].index(said)
        make_feedback(trace, "verdict", "fine", source_type="LLM_JUDGE", source_id="judge-v1")  # not a reviewer
    result = api_client.get(api(experiment, "reviewer-agreement"), {"name": "verdict"}).json()
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    assert result["krippendorff_alpha"]["value"] == pytest.approx(expected, abs=1e-3)
    assert result["krippendorff_alpha"]["ci95"][0] <= result["krippendorff_alpha"]["value"]
    assert {reviewer["source_id"] for reviewer in result["reviewers"]} == set(reviewers)
    assert result["n_items"] == int(((~np.isnan(data)).sum(axis=0) >= 2).sum())
    pair = next(p for p in result["pairs"] if {p["a"], p["b"]} == {"alice", "bob"})
    both = ~np.isnan(data[0]) & ~np.isnan(data[1])
    assert pair["n"] == both.sum()
    assert pair["cohen_kappa"]["value"] == pytest.approx(cohen_kappa_score(data[0][both], data[1][both]), abs=1e-3)
    if result["fleiss_kappa"] is None:
        assert "same number" in result["fleiss_kappa_note"]


def test_reviewer_agreement_within_a_queue_and_latest_rating_counts(api_client, experiment):
    for index in range(4):
        trace = make_trace(experiment)
        make_feedback(trace, "ok", True, source_type="HUMAN", source_id="alice", metadata={"queue_id": "3"})
        make_feedback(
            trace, "ok", False, source_type="HUMAN", source_id="alice", metadata={"queue_id": "3"}
        )  # changed her mind
        make_feedback(trace, "ok", index != 0, source_type="HUMAN", source_id="bob", metadata={"queue_id": "3"})
        make_feedback(trace, "ok", True, source_type="HUMAN", source_id="carol")  # outside the queue
    result = api_client.get(api(experiment, "reviewer-agreement"), {"name": "ok", "queue_id": "3"}).json()
    assert [r["source_id"] for r in result["reviewers"]] == ["alice", "bob"] or {
        r["source_id"] for r in result["reviewers"]
    } == {"alice", "bob"}
    assert result["pairs"][0]["n"] == 4 and result["pairs"][0]["percent_agreement"] == 0.25
    assert result["fleiss_kappa"] is not None


def test_page_shows_kappa_interval_and_matrix_whose_links_yield_exactly_the_cells_traces(
    client, reviewer, experiment, judged
):
    client.force_login(reviewer)
    response = client.get(f"/experiments/{experiment.pk}/insights/agreement/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Cohen" in page and "95% CI" in page and 'id="confusion"' in page
    context = response.context
    assert context["result"]["a"]["source_id"] == "judge-v1"
    for cell in context["result"]["confusion"]:
        row = next(r for r in context["matrix"]["rows"] if r["label"] == str(cell["a"]).lower())
        shown = next(c for c in row["cells"] if c["b"] == str(cell["b"]).lower())
        found = set()
        for link in shown["links"]:
            assert link in page.replace("&amp;", "&")
            text = parse_qs(urlparse(link).query)["filter"][0]
            found |= set(
                filter_traces(Trace.objects.filter(experiment=experiment), text).values_list("trace_id", flat=True)
            )
        assert found == set(cell["trace_ids"])
    listing = client.get(shown["links"][0])
    assert listing.status_code == 200


def test_page_explains_a_type_mismatch_without_failing(client, reviewer, experiment, judged):
    client.force_login(reviewer)
    response = client.get(f"/experiments/{experiment.pk}/insights/agreement/", {"a": "correct", "b": "score"})
    assert response.status_code == 200
    assert "agreement needs the same type" in response.content.decode()


def test_big_cells_link_in_pieces(experiment):
    from assessments.agreement.views import LINK_TRACES, trace_links

    ids = [f"tr-{index:032x}" for index in range(LINK_TRACES * 2 + 5)]
    links = trace_links(experiment.pk, ids)
    assert len(links) == 3 and all(len(link) < 4000 for link in links)


def test_wide_integer_values_without_bounds_are_compared_as_numbers(api_client, experiment):
    definition_services.create_definition(
        experiment=experiment, actor=SYSTEM, name="tokens_ok", type="number", integer=True
    )
    for value in (0, 500, 1000, 250):
        trace = make_trace(experiment)
        make_feedback(trace, "tokens_ok", value, source_type="LLM_JUDGE", source_id="judge-v1")
        make_feedback(trace, "tokens_ok", value + 10, source_type="HUMAN", source_id="alice")
    data = api_client.get(
        api(experiment), {"a": "tokens_ok", "a_source_type": "LLM_JUDGE", "b": "tokens_ok", "b_source_type": "HUMAN"}
    ).json()
    assert data["type"] == "number" and data["mae"]["value"] == pytest.approx(10.0)


def test_a_category_with_many_options(api_client, experiment):
    options = [f"topic-{index}" for index in range(150)]
    definition_services.create_definition(
        experiment=experiment, actor=SYSTEM, name="topic", type="category", options=options
    )
    chosen_a, chosen_b = [], []
    for index in range(12):
        trace = make_trace(experiment)
        a, b = options[index * 7], options[index * 7 if index % 3 else index * 7 + 1]
        make_feedback(trace, "topic", a, source_type="LLM_JUDGE", source_id="judge-v1")
        make_feedback(trace, "topic", b, source_type="HUMAN", source_id="alice")
        chosen_a.append(a)
        chosen_b.append(b)
    data = api_client.get(
        api(experiment), {"a": "topic", "a_source_type": "LLM_JUDGE", "b": "topic", "b_source_type": "HUMAN"}
    ).json()
    assert len(data["labels"]) == 150
    assert data["cohen_kappa"]["value"] == pytest.approx(cohen_kappa_score(chosen_a, chosen_b), abs=1e-3)


def test_page_for_numbers_and_reviewers_of_numbers(client, reviewer, experiment):
    rng = np.random.default_rng(4)
    for _ in range(8):
        trace = make_trace(experiment)
        x = float(np.round(rng.random(), 2))
        make_feedback(trace, "relevance", x, source_type="LLM_JUDGE", source_id="judge-v1")
        make_feedback(trace, "relevance", round(x * 0.9, 2), source_type="HUMAN", source_id="alice")
        make_feedback(trace, "relevance", round(x * 0.8, 2), source_type="HUMAN", source_id="bob")
    client.force_login(reviewer)
    query = {
        "a": "relevance",
        "a_source_type": "LLM_JUDGE",
        "b": "relevance",
        "b_source_id": "alice",
        "r-name": "relevance",
    }
    response = client.get(f"/experiments/{experiment.pk}/insights/agreement/", query)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Pearson" in page and "Spearman" in page and "Mean absolute error" in page and 'id="confusion"' not in page
    assert "Krippendorff" in page and "interval level" in page and "needs labels" in page
    assert response.context["reviewers"]["pairs"][0]["pearson"]["value"] == pytest.approx(1.0, abs=1e-3)


def test_overlapping_series_never_pair_an_assessment_with_itself(api_client, experiment):
    """A = the judge, B = everyone: each judge rating pairs with the humans on its trace only."""
    rng = np.random.default_rng(6)
    expected_a, expected_b, traces = [], [], 0
    for index in range(12):
        trace = make_trace(experiment)
        verdict = bool(rng.random() < 0.5)
        make_feedback(trace, "correct", verdict, source_type="LLM_JUDGE", source_id="judge-v1")
        for reviewer in ("alice", "bob")[: index % 3]:
            said = bool(rng.random() < 0.5)
            make_feedback(trace, "correct", said, source_type="HUMAN", source_id=reviewer)
            expected_a.append(verdict)
            expected_b.append(said)
        traces += index % 3 > 0
    data = api_client.get(api(experiment), {"a": "correct", "a_source_type": "LLM_JUDGE", "b": "correct"}).json()
    assert data["n"] == len(expected_a) and data["n_traces"] == traces
    assert data["coverage"] == {"a": traces / 12, "b": traces / 12, "a_traces": 12, "b_traces": 12}
    assert data["percent_agreement"] == pytest.approx(np.mean(np.array(expected_a) == np.array(expected_b)))
    assert data["cohen_kappa"]["value"] == pytest.approx(cohen_kappa_score(expected_a, expected_b), abs=1e-3)


def test_results_are_the_same_on_every_load(api_client, experiment, judged):
    query = {"a": "correct", "a_source_type": "LLM_JUDGE", "b": "correct", "b_source_type": "HUMAN"}
    first, again = (api_client.get(api(experiment), query).json() for _ in range(2))
    assert first == again and first["disagreements"]
    distances = [
        (row["trace_id"], row["a"]["assessment_id"], row["b"]["assessment_id"]) for row in first["disagreements"]
    ]
    assert distances == sorted(distances)  # nominal labels: all at distance 1, ties by trace id


def test_series_on_different_traces_have_no_pairs(api_client, experiment):
    for source_type, value in (("LLM_JUDGE", True), ("HUMAN", False), ("HUMAN", True)):
        make_feedback(make_trace(experiment), "correct", value, source_type=source_type, source_id="x")
        make_feedback(make_trace(experiment), "score", 0.5, source_type=source_type, source_id="x")
    for name in ("correct", "score"):
        response = api_client.get(
            api(experiment), {"a": name, "a_source_type": "LLM_JUDGE", "b": name, "b_source_type": "HUMAN"}
        )
        assert response.status_code == 200, response.content
        data = response.json()
        assert data["n"] == 0 and data["coverage"] == {"a": 0.0, "b": 0.0, "a_traces": 1, "b_traces": 2}
        assert data["percent_agreement"] is None and data["disagreements"] == []
