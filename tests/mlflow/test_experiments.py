"""MLflow's experiment endpoints: set_experiment never misroutes (issue 11 item 3), and name
patterns in experiments/search never run unbounded (issue 12 item 2)."""

import itertools
import re
import threading
import time

import pytest
import requests
from django.db import connection
from mlflow.protos import service_pb2

from traces.mlflow_experiments import like_matcher
from traces.models import Experiment

from ..factories import make_api_key, make_experiment
from .rawapi import error, proto

SEARCH = "/api/2.0/mlflow/experiments/search"
WORST_PATTERNS = [
    "name LIKE '%a%a%a%a%a%a%b'",
    "name ILIKE '%A%A%A%A%A%A%A%A%A%A%A%A%B'",
    "name LIKE '" + "%a" * 60 + "%b'",
    "name LIKE '" + "%_" * 100 + "%b'",
    "name ILIKE '" + "a%" * 120 + "b'",
    "name LIKE '" + "%" * 400 + "b'",
]


# --- LIKE without backtracking ------------------------------------------------------------------


def reference(pattern: str, name: str, ignore_case: bool = False) -> bool:
    """SQL LIKE as a regex (fine for these short strings)."""
    regex = "".join(".*" if char == "%" else "." if char == "_" else re.escape(char) for char in pattern)
    return re.fullmatch(regex, name, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


def test_like_matcher_agrees_with_sql_like_on_every_short_pattern_and_name():
    names = ["".join(letters) for size in range(7) for letters in itertools.product("ab", repeat=size)]
    patterns = ["".join(chars) for size in range(6) for chars in itertools.product("ab%_", repeat=size)]
    for pattern in patterns:
        matches = like_matcher(pattern)
        assert [name for name in names if matches(name)] == [name for name in names if reference(pattern, name)], (
            pattern
        )


@pytest.mark.parametrize(
    "pattern, name, ignore_case, expected",
    [
        ("rag%", "rag-demo", False, True),
        ("RAG%", "rag-demo", False, False),
        ("RAG%", "rag-demo", True, True),
        ("%.*%", "a.*b", False, True),  # regex characters are literal
        ("%.*%", "ab", False, False),
        ("a(b|c)", "a(b|c)", False, True),
        ("50\\%", "50\\x", False, True),  # nothing escapes: backslash is a literal, % a wildcard
        ("%ß%", "STRASSE", True, False),
        ("x\ny", "x\ny", False, True),
        ("%", "", False, True),
        ("_", "", False, False),
    ],
)
def test_like_matcher_details(pattern, name, ignore_case, expected):
    assert like_matcher(pattern, ignore_case=ignore_case)(name) is expected


@pytest.mark.parametrize("pattern", WORST_PATTERNS)
def test_worst_patterns_on_a_250_character_name_are_instant(pattern):
    value = pattern.split("'")[1]
    matches = like_matcher(value, ignore_case="ILIKE" in pattern)
    started = time.perf_counter()
    for name in ("a" * 250, "A" * 250, "a" * 249 + "b"):
        matches(name)
    assert time.perf_counter() - started < 0.05


def test_search_by_name_patterns(api, api_key):
    for name in ("rag-demo-2", "RAG_upper", "other", "50% off"):
        api_key[0].experiments.add(make_experiment(name))
    make_experiment("rag-hidden")  # not the key's

    def names(text, **extra):
        data = api.post(SEARCH, {"filter": text, **extra}).json()
        return sorted(e.name for e in proto(data, service_pb2.SearchExperiments.Response).experiments)

    assert names("name LIKE 'rag%'") == ["rag-demo", "rag-demo-2"]
    assert names("name ILIKE 'rag%'") == ["RAG_upper", "rag-demo", "rag-demo-2"]
    assert names("name LIKE '%\\_%'") == []  # nothing escapes: \\ is a literal backslash
    assert names("name LIKE '%0_ off'") == ["50% off"]
    assert names("attributes.name = 'other'") == ["other"]
    assert names("name != 'other'") == ["50% off", "RAG_upper", "rag-demo", "rag-demo-2"]
    first = api.post(SEARCH, {"filter": "name ILIKE '%r%'", "max_results": 2}).json()
    rest = api.post(SEARCH, {"filter": "name ILIKE '%r%'", "max_results": 2, "page_token": first["next_page_token"]})
    paged = [e["name"] for e in first["experiments"] + rest.json()["experiments"]]
    assert sorted(paged) == ["RAG_upper", "other", "rag-demo", "rag-demo-2"] and "next_page_token" not in rest.json()


def test_search_query_count_does_not_grow_with_matches(api, api_key, django_assert_max_num_queries):
    for n in range(6):
        api_key[0].experiments.add(make_experiment(f"exp-{n}"))
    # the key, its last use, the visible names, the page's rows; on PostgreSQL inside the test's
    # transaction also the savepoint, SET LOCAL statement_timeout, its reset and the release
    with django_assert_max_num_queries(4 if connection.vendor == "sqlite" else 8):
        assert len(api.post(SEARCH, {"filter": "name LIKE 'exp-%'"}).json()["experiments"]) == 6


@pytest.mark.live
def test_worst_patterns_answer_within_a_second_while_healthz_keeps_answering(live, key):
    """The issue's attack: one request with `name LIKE '%a%a%a%a%a%a%b'` against a 250-character
    name pinned the server (a backtracking regex inside SQLite); /healthz stopped answering."""
    key[0].experiments.add(make_experiment("a" * 250), make_experiment("A" * 250))
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key[1]}"
    health_latencies, stop = [], threading.Event()

    def probe():
        while not stop.is_set():
            started = time.perf_counter()
            assert requests.get(f"{live}/healthz", timeout=5).status_code == 200
            health_latencies.append(time.perf_counter() - started)
            time.sleep(0.02)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        for pattern in WORST_PATTERNS:
            started = time.perf_counter()
            response = session.post(f"{live}{SEARCH}", json={"filter": pattern}, timeout=5)
            assert response.status_code == 200, response.text
            assert time.perf_counter() - started < 1, pattern
            assert response.json().get("experiments", []) == []
    finally:
        stop.set()
        prober.join()
    assert health_latencies and max(health_latencies) < 1


def test_search_stops_at_the_statement_timeout_on_postgresql(db, settings):
    if connection.vendor != "postgresql":
        pytest.skip("statement_timeout is PostgreSQL's")
    from feedbackhub.timeouts import SearchTimeout, bounded_search

    settings.FEEDBACKHUB_SEARCH_TIMEOUT_MS = 50
    with pytest.raises(SearchTimeout) as raised:
        with bounded_search(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(1)")
    assert "ran longer than 0.05 s" in raised.value.message
    with connection.cursor() as cursor:  # the connection is usable again, without the timeout
        cursor.execute("SELECT pg_sleep(0.1), current_setting('statement_timeout')")
        assert cursor.fetchone()[1] == "0"


# --- set_experiment never misroutes --------------------------------------------------------------


def test_get_by_name_of_an_experiment_the_key_cannot_use_is_a_403(api):
    hidden = make_experiment("secret")
    message = error(
        api.get("/api/2.0/mlflow/experiments/get-by-name", experiment_name="secret"), 403, "PERMISSION_DENIED"
    )
    assert "'secret' is taken by an experiment this API key cannot use" in message
    assert str(hidden.pk) not in message
    # names are unique across the server (as in MLflow): create says so; the id stays hidden
    error(api.post("/api/2.0/mlflow/experiments/create", {"name": "secret"}), 400, "RESOURCE_ALREADY_EXISTS")
    error(api.get("/api/2.0/mlflow/experiments/get", experiment_id=hidden.pk), 404, "RESOURCE_DOES_NOT_EXIST")
    # a name nobody has answers like a missing experiment, so the client creates it
    error(api.get("/api/2.0/mlflow/experiments/get-by-name", experiment_name="fresh"), 404, "RESOURCE_DOES_NOT_EXIST")


@pytest.mark.live
def test_set_experiment_on_a_name_the_key_cannot_use_raises(mlflow, key):
    """Before: set_experiment returned None and the traces went to the key's own experiment."""
    from mlflow.exceptions import MlflowException

    make_experiment("secret")
    with pytest.raises(MlflowException) as raised:
        mlflow.set_experiment("secret")
    assert "PERMISSION_DENIED" in str(raised.value.error_code) and "cannot use" in str(raised.value)
    created = mlflow.set_experiment("brand-new")  # a free name is still created and usable
    assert created.experiment_id == str(Experiment.objects.get(name="brand-new").pk)


@pytest.mark.live
def test_set_experiment_after_the_key_is_granted_the_experiment(mlflow, key):
    shared = make_experiment("shared")
    other_key, _ = make_api_key(shared)
    key[0].experiments.add(shared)
    assert mlflow.set_experiment("shared").experiment_id == str(shared.pk)
    assert other_key.experiments.filter(pk=shared.pk).exists()
