"""Token usage and cost per span and per trace (traces.usage), as MLflow's server derives them,
through every way in, and the filter language and sorting on the trace totals."""

import json

import pytest
from rest_framework.test import APIClient

from traces import usage
from traces.models import Span, Trace

from ..factories import make_api_key
from ..mlflow import payloads
from ..mlflow.payloads import new_trace_id
from ..mlflow.rawapi import V3, MlflowApi

pytestmark = pytest.mark.django_db


def span(attributes=None, *, inputs=None, outputs=None, span_type="LLM"):
    derived = {
        "span_id": "00000000000000a1",
        "parent_span_id": None,
        "span_type": span_type,
        "inputs": inputs,
        "outputs": outputs,
        "attributes": dict(attributes or {}),
    }
    usage.derive(derived)
    return derived["attributes"]


# --- per span -------------------------------------------------------------------------------


def test_openinference_token_counts_model_and_cost():
    attributes = span(
        {
            "llm.token_count.prompt": 1000,
            "llm.token_count.completion": 500,
            "llm.model_name": "gpt-4o-mini-2024-07-18",
            "llm.provider": "openai",
        }
    )
    assert attributes[usage.CHAT_USAGE] == {"input_tokens": 1000, "output_tokens": 500, "total_tokens": 1500}
    assert attributes[usage.LLM_MODEL] == "gpt-4o-mini-2024-07-18" and attributes[usage.LLM_PROVIDER] == "openai"
    # gpt-4o-mini: $0.15 / $0.60 per million tokens.
    assert attributes[usage.LLM_COST] == pytest.approx(
        {"input_cost": 0.00015, "output_cost": 0.0003, "total_cost": 0.00045}
    )


def test_genai_usage_attributes():
    attributes = span(
        {
            "gen_ai.usage.input_tokens": 20,
            "gen_ai.usage.output_tokens": 7,
            "gen_ai.usage.cache_read.input_tokens": 10,
            "gen_ai.response.model": "gpt-4o",
        }
    )
    assert attributes[usage.CHAT_USAGE] == {
        "input_tokens": 20,
        "output_tokens": 7,
        "total_tokens": 27,
        "cache_read_input_tokens": 10,
    }
    # gpt-4o: 10 input at $2.50, 10 cached at $1.25, 7 output at $10 per million.
    assert attributes[usage.LLM_COST]["total_cost"] == pytest.approx((10 * 2.5 + 10 * 1.25 + 7 * 10) / 1e6)


def test_older_genai_names_and_openai_response_usage_in_outputs():
    assert span({"gen_ai.usage.prompt_tokens": "3", "gen_ai.usage.completion_tokens": "4"})[usage.CHAT_USAGE] == {
        "input_tokens": 3,
        "output_tokens": 4,
        "total_tokens": 7,
    }
    response = {
        "id": "chatcmpl-1",
        "model": "gpt-4.1-nano",
        "choices": [{"message": {"role": "assistant", "content": "hi"}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21},
    }
    attributes = span(outputs=response, inputs={"model": "gpt-4.1-nano", "messages": []})
    assert attributes[usage.CHAT_USAGE] == {"input_tokens": 12, "output_tokens": 9, "total_tokens": 21}
    assert attributes[usage.LLM_MODEL] == "gpt-4.1-nano" and attributes[usage.LLM_COST]["total_cost"] > 0
    responses_api = {"model": "o3", "usage": {"input_tokens": 5, "output_tokens": 6, "total_tokens": 11}}
    assert span(outputs=responses_api)[usage.CHAT_USAGE] == {"input_tokens": 5, "output_tokens": 6, "total_tokens": 11}


def test_the_mlflow_clients_own_attributes_are_kept_and_parsed():
    attributes = span(
        {
            usage.CHAT_USAGE: json.dumps({"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}),
            usage.LLM_MODEL: json.dumps("gpt-4o-mini"),
            usage.LLM_COST: json.dumps({"input_cost": 1.0, "output_cost": 2.0, "total_cost": 3.0}),
            "llm.token_count.prompt": 999,  # the client's own usage wins
        }
    )
    assert attributes[usage.CHAT_USAGE] == {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
    assert attributes[usage.LLM_MODEL] == "gpt-4o-mini"
    assert attributes[usage.LLM_COST] == {"input_cost": 1.0, "output_cost": 2.0, "total_cost": 3.0}


def test_unknown_models_agents_and_hostile_counts_get_no_cost(settings):
    assert usage.LLM_COST not in span({"llm.token_count.prompt": 10, "llm.model_name": "my-finetune"})
    assert usage.LLM_COST not in span({"llm.token_count.prompt": 10, "llm.model_name": "gpt-4o"}, span_type="AGENT")
    assert usage.CHAT_USAGE not in span({"llm.token_count.prompt": -5, "llm.token_count.completion": True})
    assert usage.CHAT_USAGE not in span({"llm.token_count.prompt": 1e300})
    settings.FEEDBACKHUB_MODEL_PRICES = {"My-Finetune": {"input": 1000000, "output": 0}}
    assert span({"llm.token_count.prompt": 2, "llm.model_name": "my-finetune"})[usage.LLM_COST]["total_cost"] == 2.0


def test_trace_totals_count_nested_llm_spans_once():
    nodes = [
        ("a", None, None, None),  # the app's root: no usage
        ("b", "a", {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}, {"total_cost": 0.5}),
        ("c", "b", {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}, {"total_cost": 0.5}),  # inside b
        ("d", "a", json.dumps({"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}), None),
        ("e", "zzz", {"input_tokens": 100, "total_tokens": 100}, None),  # parent not (yet) stored
    ]
    tokens, cost = usage.aggregate(nodes)
    assert tokens == {"input_tokens": 111, "output_tokens": 6, "total_tokens": 117}
    assert cost == {"input_cost": 0, "output_cost": 0, "total_cost": 0.5}
    assert usage.aggregate([("a", None, None, None)]) == (None, None)
    assert usage.aggregate([("a", "b", {"total_tokens": 1}, None), ("b", "a", {"total_tokens": 2}, None)]) == (
        None,
        None,
    )  # a parent cycle has no root: nothing counted, nothing loops


# --- per trace, through the ways in -----------------------------------------------------------


@pytest.fixture
def raw(experiment):
    return make_api_key(experiment)[1]


def llm_spans(trace_id):
    spans = payloads.mlflow_spans(trace_id, 3)
    spans[1]["attributes"].update(
        {"mlflow.spanType": "CHAT_MODEL", "llm.token_count.prompt": 1000, "llm.token_count.completion": 100}
    )
    spans[1]["attributes"]["mlflow.spanInputs"] = {"model": "gpt-4o-mini", "messages": []}
    spans[2]["attributes"].update({"gen_ai.usage.input_tokens": 2000, "gen_ai.request.model": "gpt-4o"})
    return spans


def test_otlp_spans_exported_one_by_one_give_trace_totals_the_client_reads(raw, experiment):
    api = MlflowApi(raw)
    trace_id = new_trace_id()
    spans = llm_spans(trace_id)
    for spec in reversed(spans):  # children first, then the root, as the mlflow client exports them
        assert api.otlp(trace_id, [spec], experiment.pk).status_code == 200
    trace = Trace.objects.get(pk=trace_id)
    expected_cost = (1000 * 0.15 + 100 * 0.6 + 2000 * 2.5) / 1e6
    assert trace.total_tokens == 3100 and trace.cost == pytest.approx(expected_cost)
    assert json.loads(trace.metadata["mlflow.trace.tokenUsage"]) == {
        "input_tokens": 3000,
        "output_tokens": 100,
        "total_tokens": 3100,
    }
    assert json.loads(trace.metadata["mlflow.trace.cost"])["total_cost"] == pytest.approx(expected_cost)
    info = api.get(f"{V3}/traces/{trace_id}").json()["trace"]["trace_info"]
    assert json.loads(info["trace_metadata"]["mlflow.trace.tokenUsage"])["total_tokens"] == 3100
    served = api.get(f"{V3}/traces/get", trace_id=trace_id, allow_partial="True").json()["trace"]["spans"]
    chat = next(s for s in served if s["name"] == "retrieve_docs_2")
    attributes = {item["key"]: item["value"] for item in chat["attributes"]}
    assert "kvlist_value" in attributes[usage.CHAT_USAGE] and attributes[usage.LLM_MODEL] == {
        "string_value": "gpt-4o-mini"
    }


def test_a_parent_llm_span_arriving_last_replaces_its_childs_count(raw, experiment):
    api = MlflowApi(raw)
    trace_id = new_trace_id()
    spans = payloads.mlflow_spans(trace_id, 2)
    spans[1]["attributes"]["llm.token_count.total"] = 40
    assert api.otlp(trace_id, [spans[1]], experiment.pk).status_code == 200
    assert Trace.objects.get(pk=trace_id).total_tokens == 40
    spans[0]["attributes"]["llm.token_count.total"] = 50  # the root wraps the child's call
    assert api.otlp(trace_id, [spans[0]], experiment.pk).status_code == 200
    assert Trace.objects.get(pk=trace_id).total_tokens == 50


def test_start_trace_carries_the_clients_totals(raw, experiment):
    api = MlflowApi(raw)
    trace_id = new_trace_id()
    body = payloads.trace_info(trace_id, experiment.pk)
    body["trace"]["trace_info"]["trace_metadata"]["mlflow.trace.tokenUsage"] = json.dumps(
        {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}
    )
    assert api.post(f"{V3}/traces", body).status_code == 200
    assert Trace.objects.get(pk=trace_id).total_tokens == 10


def test_native_api_derives_usage_too(raw):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    spans = [
        {
            "span_id": "00000000000000a1",
            "name": "chat",
            "span_type": "CHAT_MODEL",
            "start_time_ns": 1,
            "end_time_ns": 2,
            "inputs": {"model": "gpt-4o", "messages": []},
            "outputs": {"usage": {"prompt_tokens": 4, "completion_tokens": 6, "total_tokens": 10}},
        }
    ]
    response = client.post("/api/v1/traces", {"spans": spans}, format="json")
    assert response.status_code == 201, response.content
    trace = Trace.objects.get()
    assert trace.total_tokens == 10 and trace.cost == pytest.approx((4 * 2.5 + 6 * 10) / 1e6)
    assert Span.objects.get().attributes[usage.LLM_MODEL] == "gpt-4o"


def test_openinference_retrieval_documents_are_the_retriever_output(raw, experiment):
    api = MlflowApi(raw)
    trace_id = new_trace_id()
    spans = payloads.mlflow_spans(trace_id, 1)
    attributes = spans[0]["attributes"]
    del attributes["mlflow.spanOutputs"], attributes["mlflow.spanType"]
    attributes.update(
        {
            "openinference.span.kind": "RETRIEVER",
            "retrieval.documents.0.document.id": "doc-1",
            "retrieval.documents.0.document.content": "MLflow is open source.",
            "retrieval.documents.0.document.score": 0.9,
            "retrieval.documents.0.document.metadata": json.dumps({"source": "docs"}),
            "retrieval.documents.1.document.content": "It tracks experiments.",
        }
    )
    assert api.otlp(trace_id, spans, experiment.pk).status_code == 200
    stored = Span.objects.get(trace_id=trace_id)
    assert stored.span_type == "RETRIEVER"
    assert stored.outputs == [
        {"page_content": "MLflow is open source.", "metadata": {"source": "docs", "score": 0.9}, "id": "doc-1"},
        {"page_content": "It tracks experiments.", "metadata": {}},
    ]


# --- filter and sort --------------------------------------------------------------------------


@pytest.fixture
def priced(raw, experiment):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    ids = {}
    for name, tokens in (("none", None), ("small", 100), ("big", 10_000)):
        attributes = {"llm.token_count.prompt": tokens, "llm.model_name": "gpt-4o"} if tokens else {}
        spans = [
            {
                "span_id": "00000000000000a1",
                "name": name,
                "start_time_ns": 1,
                "end_time_ns": 2,
                "attributes": attributes,
            }
        ]
        response = client.post("/api/v1/traces", {"spans": spans}, format="json")
        ids[name] = response.json()["trace_id"]
    return client, ids


@pytest.mark.parametrize(
    "text, names",
    [
        ("trace.total_tokens > 1000", {"big"}),
        ("total_tokens <= 100", {"small"}),
        ("trace.total_tokens IS NULL", {"none"}),
        ("trace.cost > 0.001", {"big"}),
        ("trace.cost < 0.001", {"small"}),
        ("trace.cost IS NOT NULL AND trace.cost != 0.025", {"small"}),
    ],
)
def test_filter_by_tokens_and_cost(priced, text, names):
    client, ids = priced
    response = client.get("/api/v1/traces", {"filter": text})
    assert response.status_code == 200, response.content
    assert {trace["name"] for trace in response.json()["traces"]} == names


def test_filter_errors_name_the_unit(priced):
    client, _ = priced
    response = client.get("/api/v1/traces", {"filter": "trace.total_tokens > 1.5"})
    assert response.status_code == 400 and "whole number of tokens" in response.json()["filter"][0]
    response = client.get("/api/v1/traces", {"filter": "trace.cost > 'cheap'"})
    assert response.status_code == 400 and "Expected a number" in response.json()["filter"][0]


@pytest.mark.parametrize(
    "order_by, names",
    [
        ("total_tokens DESC", ["big", "small", "none"]),
        ("trace.total_tokens ASC", ["none", "small", "big"]),
        ("cost DESC", ["big", "small", "none"]),
    ],
)
def test_sort_by_tokens_and_cost_with_pages(priced, order_by, names):
    client, _ = priced
    seen, token = [], None
    while True:
        params = {"order_by": order_by, "max_results": 1, **({"page_token": token} if token else {})}
        body = client.get("/api/v1/traces", params).json()
        seen += [trace["name"] for trace in body["traces"]]
        token = body["next_page_token"]
        if not token:
            break
    assert seen == names


def test_mlflow_search_orders_by_cost(priced, experiment):
    client, ids = priced
    api = MlflowApi(client._credentials["HTTP_AUTHORIZATION"].removeprefix("Bearer "))
    body = {"locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": str(experiment.pk)}}]}
    response = api.post(f"{V3}/traces/search", {**body, "order_by": ["cost DESC"]})
    assert response.status_code == 200, response.content
    assert [info["trace_id"] for info in response.json()["traces"]] == [ids["big"], ids["small"], ids["none"]]


# --- pages ------------------------------------------------------------------------------------


def test_trace_page_and_list_show_tokens_and_cost(priced, reviewer_client, experiment):
    _, ids = priced
    html = reviewer_client.get(f"/traces/{ids['big']}/").content.decode()
    assert "10,000 tokens" in html and "$0.025" in html
    listing = reviewer_client.get(f"/experiments/{experiment.pk}/traces/", {"sort": "costliest"}).content.decode()
    assert "10,000 tokens · $0.025" in listing and "100 tokens · $0.00025" in listing
    assert listing.index("10,000 tokens") < listing.index("100 tokens ·")


def test_usage_template_filters():
    from traces.templatetags.trace_tags import tokens, usd

    assert [tokens(None), tokens(1), tokens(1234)] == ["—", "1 token", "1,234 tokens"]
    assert [usd(None), usd(0), usd(0.000123), usd(0.0421), usd(0.5), usd(12.5)] == [
        "—",
        "$0",
        "$0.000123",
        "$0.0421",
        "$0.5",
        "$12.50",
    ]
