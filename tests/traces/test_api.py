"""The experiments and traces endpoints of the native API, through HTTP with real API keys."""

import json

import pytest
from django.db import connection
from rest_framework.test import APIClient

from traces.models import Experiment, Span, Trace
from traces.services import revoke_api_key

from ..factories import SYSTEM, make_api_key, make_spans, make_trace

pytestmark = pytest.mark.django_db

TRACE_ID = "tr-" + "ab" * 16


def key_client(*experiments) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_api_key(*experiments)[1]}")
    return client


def trace_body(**overrides):
    return {"trace_id": TRACE_ID, "spans": make_spans(2), "tags": {"env": "test"}, **overrides}


# --- experiments ---------------------------------------------------------------------------------


def test_experiments_list_shows_only_the_keys_experiments(api_client, experiment, other_experiment):
    response = api_client.get("/api/v1/experiments")
    assert response.status_code == 200
    assert [e["name"] for e in response.json()] == ["rag-demo"]
    assert response.json()[0]["experiment_id"] == str(experiment.pk)


def test_create_experiment_gives_the_creating_key_access(api_client):
    response = api_client.post("/api/v1/experiments", {"name": "new-app", "description": "d"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "new-app" and body["experiment_id"] == str(Experiment.objects.get(name="new-app").pk)
    ingest = api_client.post("/api/v1/traces", trace_body(experiment_id=body["experiment_id"]), format="json")
    assert ingest.status_code == 201, ingest.json()


def test_create_experiment_with_a_taken_name_is_409(api_client, experiment):
    response = api_client.post("/api/v1/experiments", {"name": "rag-demo"}, format="json")
    assert response.status_code == 409 and "rag-demo" in response.json()["detail"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 251}, "name"),
        ({"name": 5, "description": ["x"]}, "description"),
    ],
)
def test_create_experiment_bad_input_names_the_field(api_client, body, field):
    response = api_client.post("/api/v1/experiments", body, format="json")
    assert response.status_code == 400 and field in response.json()


# --- ingest --------------------------------------------------------------------------------------


def test_ingest_creates_then_merges_without_duplicating_spans(api_client, experiment):
    first = api_client.post("/api/v1/traces", trace_body(), format="json")
    assert first.status_code == 201, first.json()
    body = first.json()
    assert body["trace_id"] == TRACE_ID and body["experiment_id"] == str(experiment.pk)
    assert body["span_count"] == 2 and body["state"] == "OK" and body["name"] == "root"
    assert body["request_preview"] == '{"question": "What is MLflow?"}'
    spans = make_spans(3)
    spans[1]["name"] = "renamed"
    again = api_client.post("/api/v1/traces", trace_body(spans=spans, tags={"b": "2"}), format="json")
    assert again.status_code == 200
    assert again.json()["span_count"] == 3 and again.json()["tags"] == {"env": "test", "b": "2"}
    assert Span.objects.filter(trace_id=TRACE_ID).count() == 3
    assert Span.objects.get(trace_id=TRACE_ID, span_id=spans[1]["span_id"]).name == "renamed"


def test_ingest_without_trace_id_generates_one(api_client):
    response = api_client.post("/api/v1/traces", {"spans": make_spans(1)}, format="json")
    assert response.status_code == 201 and response.json()["trace_id"].startswith("tr-")


def test_ingest_keeps_inputs_and_outputs_exactly(api_client):
    spans = make_spans(1)
    spans[0]["inputs"] = {"messages": [{"role": "user", "content": "hi"}], "n": 4, "t": 0.5, "ok": True}
    spans[0]["outputs"] = ["a", 1, None]
    api_client.post("/api/v1/traces", trace_body(spans=spans), format="json")
    detail = api_client.get(f"/api/v1/traces/{TRACE_ID}").json()
    assert detail["spans"][0]["inputs"] == spans[0]["inputs"] and detail["spans"][0]["outputs"] == ["a", 1, None]


def test_ingest_needs_experiment_id_when_the_key_has_several(experiment, other_experiment):
    client = key_client(experiment, other_experiment)
    response = client.post("/api/v1/traces", trace_body(), format="json")
    assert response.status_code == 400 and "experiment_id" in response.json()
    ok = client.post("/api/v1/traces", trace_body(experiment_id=str(other_experiment.pk)), format="json")
    assert ok.status_code == 201 and Trace.objects.get().experiment == other_experiment


@pytest.mark.parametrize("experiment_id", ["999999", "not-a-number", "\u00b3", "\u0663"])
def test_ingest_into_an_unknown_experiment_is_404(api_client, experiment_id):
    response = api_client.post("/api/v1/traces", trace_body(experiment_id=experiment_id), format="json")
    assert response.status_code == 404 and not Trace.objects.exists()


def test_ingest_into_an_experiment_of_another_key_is_404(api_client, other_experiment):
    response = api_client.post("/api/v1/traces", trace_body(experiment_id=str(other_experiment.pk)), format="json")
    assert response.status_code == 404 and not Trace.objects.exists()


def test_a_trace_id_of_another_experiment_is_409(experiment, other_experiment):
    make_trace(other_experiment, trace_id=TRACE_ID)
    client = key_client(experiment, other_experiment)
    response = client.post("/api/v1/traces", trace_body(experiment_id=str(experiment.pk)), format="json")
    assert response.status_code == 409 and Trace.objects.get().experiment == other_experiment


def bad_span(**fields):
    span = make_spans(1)[0]
    span.update(fields)
    return [span]


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"trace_id": "tr-123"}, "trace_id"),
        ({"trace_id": "TR-" + "AB" * 16}, "trace_id"),
        ({"name": "x" * 251}, "name"),
        ({"state": "DONE"}, "state"),
        ({"tags": {"k": 1}}, "tags"),
        ({"tags": ["k"]}, "tags"),
        ({"metadata": {"k": None}}, "metadata"),
        ({"metadata": {"k\x00": "v"}}, "metadata"),
        ({"execution_time_ms": 2**64}, "execution_time_ms"),
        ({"execution_time_ms": "slow"}, "execution_time_ms"),
        ({"request_time": "yesterday"}, "request_time"),
        ({"client_request_id": "c" * 251}, "client_request_id"),
        ({"spans": "many"}, "spans"),
        ({"spans": bad_span(span_id="xyz")}, "spans"),
        ({"spans": bad_span(start_time_ns=-1)}, "spans"),
        ({"spans": bad_span(start_time_ns="now")}, "spans"),
        ({"spans": bad_span(name="n" * 251)}, "spans"),
        ({"spans": bad_span(status_code="FINE")}, "spans"),
        ({"spans": bad_span(attributes=[1])}, "spans"),
        ({"spans": bad_span(events={"name": "e"})}, "spans"),
        ({"spans": bad_span(inputs={"text": "a\x00b"})}, "spans"),
        ({"spans": bad_span(end_time_ns=1)}, "spans[0].end_time_ns"),
        ({"spans": make_spans(2) + make_spans(1)}, "spans"),
    ],
)
def test_bad_trace_input_is_400_naming_the_field_and_stores_nothing(api_client, overrides, field):
    response = api_client.post("/api/v1/traces", trace_body(**overrides), format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json(), response.json()
    assert not Trace.objects.exists() and not Span.objects.exists()


def test_the_failing_span_is_named_by_its_index(api_client):
    spans = make_spans(3)
    spans[2]["span_id"] = "nothex"
    errors = api_client.post("/api/v1/traces", trace_body(spans=spans), format="json").json()
    assert errors == {"spans": {"2": {"span_id": ["must be 16 lowercase hex digits"]}}}


@pytest.mark.parametrize(
    "raw, message",
    [
        ('{"spans": [', "JSON parse error"),
        ("[1, 2]", "Expected a dictionary"),
        ('"text"', "Expected a dictionary"),
        ('{"trace_id": NaN}', "JSON parse error"),
        ("[" * 10_000 + "]" * 10_000, "nested more than"),
    ],
)
def test_malformed_json_is_400(api_client, raw, message):
    response = api_client.post("/api/v1/traces", raw, content_type="application/json")
    assert response.status_code == 400
    assert message in json.dumps(response.json())


def test_a_body_over_the_limit_is_413(api_client, settings):
    settings.FEEDBACKHUB_MAX_BODY_BYTES = 2000
    spans = make_spans(1)
    spans[0]["inputs"] = {"text": "x" * 3000}
    response = api_client.post("/api/v1/traces", trace_body(spans=spans), format="json")
    assert response.status_code == 413 and "limit" in response.json()["detail"]
    assert not Trace.objects.exists()


def test_other_content_types_are_415(api_client):
    response = api_client.post("/api/v1/traces", "trace_id=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415


def test_no_credentials_is_401(experiment):
    response = APIClient().post("/api/v1/traces", trace_body(), format="json")
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")


def test_an_unknown_key_is_401(experiment):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer fh_not_a_key")
    assert client.get("/api/v1/traces").status_code == 401


def test_a_revoked_key_is_401(experiment):
    key, raw = make_api_key(experiment)
    revoke_api_key(api_key=key, actor=SYSTEM)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = client.post("/api/v1/traces", trace_body(), format="json")
    assert response.status_code == 401 and "revoked" in response.json()["detail"]


def test_a_key_records_when_it_was_last_used(api_client, api_key):
    assert api_key[0].last_used_at is None
    api_client.get("/api/v1/experiments")
    api_key[0].refresh_from_db()
    assert api_key[0].last_used_at is not None


def test_wrong_method_is_405(api_client):
    assert api_client.delete("/api/v1/traces").status_code == 405


# --- search --------------------------------------------------------------------------------------


@pytest.fixture
def many_traces(experiment):
    traces = []
    for n in range(7):
        spans = make_spans(2, start_ns=1_790_000_000_000_000_000 + n * 60_000_000_000)
        if n == 3:
            spans[0]["status_code"] = "ERROR"
        traces.append(make_trace(experiment, spans=spans))
    return traces


def test_search_is_newest_first_and_pages_cover_everything_once(api_client, many_traces, experiment):
    seen, token = [], None
    while True:
        params = {"experiment_id": experiment.pk, "max_results": 3, **({"page_token": token} if token else {})}
        body = api_client.get("/api/v1/traces", params).json()
        seen += [t["trace_id"] for t in body["traces"]]
        token = body["next_page_token"]
        if token is None:
            break
    assert seen == [t.trace_id for t in reversed(many_traces)]


def test_search_orders_by_duration_and_filters_by_status(api_client, many_traces):
    body = api_client.get("/api/v1/traces", {"status": "ERROR"}).json()
    assert [t["trace_id"] for t in body["traces"]] == [many_traces[3].trace_id]
    oldest = api_client.get("/api/v1/traces", {"order_by": "request_time ASC", "max_results": 1}).json()
    assert oldest["traces"][0]["trace_id"] == many_traces[0].trace_id


def test_search_by_time_range(api_client, many_traces):
    start = int(many_traces[2].request_time.timestamp() * 1000)
    end = many_traces[4].request_time.isoformat()
    body = api_client.get("/api/v1/traces", {"start_time": start, "end_time": end}).json()
    assert [t["trace_id"] for t in body["traces"]] == [many_traces[3].trace_id, many_traces[2].trace_id]


def test_search_with_the_filter_language(api_client, many_traces):
    body = api_client.get("/api/v1/traces", {"filter": "attributes.status = 'ERROR'"}).json()
    assert [t["trace_id"] for t in body["traces"]] == [many_traces[3].trace_id]


def test_search_never_shows_other_experiments(api_client, many_traces, other_experiment):
    make_trace(other_experiment)
    body = api_client.get("/api/v1/traces", {"max_results": 500}).json()
    assert len(body["traces"]) == 7


@pytest.mark.parametrize(
    "params, field",
    [
        ({"max_results": "many"}, "max_results"),
        ({"max_results": 0}, "max_results"),
        ({"max_results": 501}, "max_results"),
        ({"order_by": "name"}, "order_by"),
        ({"order_by": "request_time SIDEWAYS"}, "order_by"),
        ({"page_token": "garbage"}, "page_token"),
        ({"status": "FINE"}, "status"),
        ({"start_time": "last week"}, "start_time"),
        ({"filter": "feedback.x = "}, "filter"),
        ({"filter": "name = 'a\x00'"}, "filter"),
    ],
)
def test_bad_search_parameters_are_400_naming_the_parameter(api_client, many_traces, params, field):
    response = api_client.get("/api/v1/traces", params)
    assert response.status_code == 400 and field in response.json(), response.json()


@pytest.mark.parametrize("experiment_id", ["999999", "abc", "\u00b3"])
def test_search_in_an_unknown_experiment_is_404(api_client, experiment_id):
    assert api_client.get("/api/v1/traces", {"experiment_id": experiment_id}).status_code == 404


def test_search_in_another_keys_experiment_is_404(api_client, other_experiment):
    make_trace(other_experiment)
    assert api_client.get("/api/v1/traces", {"experiment_id": other_experiment.pk}).status_code == 404


def test_search_query_count_does_not_grow_with_the_page(api_client, experiment, django_assert_max_num_queries):
    for n in range(30):
        make_trace(experiment, spans=make_spans(2, start_ns=1_790_000_000_000_000_000 + n))
    api_client.get("/api/v1/traces")  # warm up: last_used_at
    # key lookup, key experiments, visible experiments subquery in the page query, the page itself;
    # on PostgreSQL inside the test's transaction also the savepoint, SET LOCAL statement_timeout,
    # its reset and the release (feedbackhub.timeouts.bounded_search)
    with django_assert_max_num_queries(4 if connection.vendor == "sqlite" else 8):
        assert len(api_client.get("/api/v1/traces", {"max_results": 25}).json()["traces"]) == 25


def test_unknown_trace_is_404(api_client):
    assert api_client.get(f"/api/v1/traces/{TRACE_ID}").status_code == 404
    assert api_client.get("/api/v1/traces/not-an-id").status_code == 404
    assert api_client.get("/api/v1/traces/" + "t" * 300).status_code == 404
    assert api_client.get("/api/v1/traces/tr-%00").status_code == 404


PLAIN_SPAN = {
    "span_id": "0123456789abcdef",
    "parent_span_id": None,
    "name": " root ",
    "span_type": "CHAIN",
    "start_time_ns": 1_700_000_000_000_000_000,
    "end_time_ns": 1_700_000_000_500_000_000,
    "status_code": "OK",
    "inputs": {"question": "q", "n": [1, 2.5, None, True]},
    "outputs": "answer",
    "attributes": {"model": "m"},
    "events": [{"name": "e"}],
}
TRACE_BODIES = [
    {"spans": [PLAIN_SPAN]},
    {
        "experiment_id": " 7 ",
        "trace_id": "tr-" + "a" * 32,
        "name": " n ",
        "tags": {"k": " v "},
        "metadata": {"mlflow.trace.user": "u"},
        "spans": [PLAIN_SPAN, {"span_id": "1" * 16, "parent_span_id": "0123456789abcdef", "start_time_ns": 5}],
    },
    {},
    # below: bodies the serializer decides (an error, or a shape the hand-written parse leaves alone)
    {"spans": [{**PLAIN_SPAN, "start_time_ns": True}]},
    {"spans": [{**PLAIN_SPAN, "start_time_ns": "5"}]},
    {"spans": [{**PLAIN_SPAN, "start_time_ns": 2**63}]},
    {"spans": [{**PLAIN_SPAN, "end_time_ns": -1}]},
    {"spans": [{**PLAIN_SPAN, "span_id": "0123456789ABCDEF"}]},
    {"spans": [{**PLAIN_SPAN, "span_id": " 0123456789abcdef"}]},
    {"spans": [{**PLAIN_SPAN, "parent_span_id": ""}]},
    {"spans": [{**PLAIN_SPAN, "span_type": " "}]},
    {"spans": [{**PLAIN_SPAN, "span_type": "x" * 51}]},
    {"spans": [{**PLAIN_SPAN, "name": "é"}]},
    {"spans": [{**PLAIN_SPAN, "status_code": ""}]},
    {"spans": [{**PLAIN_SPAN, "status_code": "FINE"}]},
    {"spans": [{**PLAIN_SPAN, "inputs": {"a": "\x00"}}]},
    {"spans": [{**PLAIN_SPAN, "attributes": None}]},
    {"spans": [{**PLAIN_SPAN, "events": [1]}]},
    {"spans": [{**PLAIN_SPAN, "extra": 1}]},
    {"spans": None},
    {"spans": [PLAIN_SPAN], "request_time": "2026-01-01T00:00:00Z"},
    {"trace_id": "tr-" + "a" * 32 + "\n"},
    {"trace_id": "tr-x"},
    {"experiment_id": ""},
    {"experiment_id": 7},
    {"tags": {"k": 1}},
    {"metadata": {"k": "\x00"}},
    {"name": "x" * 251},
    [],
]


@pytest.mark.parametrize("body", TRACE_BODIES)
def test_simple_trace_input_agrees_with_the_serializer(body):
    """The hand-written parse of plain trace bodies gives the serializer's validated data, or defers to it."""
    from traces.serializers import TraceInput, simple_trace_input

    serializer = TraceInput(data=body)
    fast = simple_trace_input(body)
    if TRACE_BODIES.index(body) < 3:
        assert fast is not None  # the plain bodies take the fast path
    if fast is not None:
        assert serializer.is_valid(), serializer.errors
        assert fast == serializer.validated_data
