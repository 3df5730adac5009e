"""`manage.py load_demo`: a RAG question-answering app's traces and feedback, a demo admin,
a reviewer and a demo API key. Idempotent: a second run changes nothing and prints the same key.

Everything is written through the services (ingest_trace, log_feedback, override_feedback, …),
exactly as the API, the MLflow protocol and the reviewer pages would write it. Trace ids, span
ids and every "random" choice come from fixed seeds, so two machines get the same demo.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from assessments import services
from traces import services as trace_services
from traces.access import Actor
from traces.models import ApiKey, Experiment, Membership

DEMO_EXPERIMENT = "rag-demo"
SECOND_EXPERIMENT = "sql-agent-dev"
DEFAULT_DEMO_KEY = "fh_demo_key_change_me_0000000000000000000000"
DEMO_KEY_LABEL = "demo key (rag-demo)"
MODEL = "gpt-4o-mini"
JUDGE = f"openai:/{MODEL}"
VECTOR_INDEX = "main.docs.mlflow_docs_chunks_index"
SYSTEM_PROMPT = (
    "You are DocsBot, an assistant for engineers using MLflow and Databricks. Answer only from the "
    "provided context, cite the documents you used as [doc-id], and say so when the context does not "
    "contain the answer."
)

# --- the knowledge base the retriever searches -------------------------------------------------

DOCS = {
    "doc-tracing-overview": (
        "MLflow Tracing overview",
        "https://mlflow.org/docs/latest/genai/tracing/",
        "MLflow Tracing records the inputs, outputs and metadata of every step of a GenAI application. "
        "A trace is one request; its spans are the steps (LLM calls, retrievals, tool calls), arranged "
        "as a tree with a single root span.",
    ),
    "doc-openai-autolog": (
        "Automatic tracing for OpenAI",
        "https://mlflow.org/docs/latest/genai/tracing/integrations/openai",
        "Call mlflow.openai.autolog() once at start-up and every call made through the OpenAI SDK is "
        "traced, including streaming and tool calls. Token usage is recorded on the span.",
    ),
    "doc-trace-decorator": (
        "Manual tracing with @mlflow.trace",
        "https://mlflow.org/docs/latest/genai/tracing/app-instrumentation/manual-tracing",
        "Decorate a function with @mlflow.trace to create a span for each call. Use span_type, for example "
        "SpanType.RETRIEVER or SpanType.TOOL, so that UIs can render the span's inputs and outputs.",
    ),
    "doc-log-feedback": (
        "Collecting feedback",
        "https://mlflow.org/docs/latest/genai/assessments/feedback",
        "mlflow.log_feedback(trace_id=..., name='user_satisfaction', value=True, source=AssessmentSource("
        "source_type='HUMAN', source_id='user_123')) attaches feedback to a trace. Values may be booleans, "
        "numbers, strings, lists or dictionaries; pass span_id to attach it to one span.",
    ),
    "doc-expectations": (
        "Expectations (ground truth)",
        "https://mlflow.org/docs/latest/genai/assessments/expectations",
        "mlflow.log_expectation records what the correct output should have been, for example an "
        "expected_answer or a list of expected_facts. Expectations feed evaluation datasets.",
    ),
    "doc-override-feedback": (
        "Correcting an LLM judge",
        "https://mlflow.org/docs/latest/genai/assessments/feedback#override",
        "mlflow.override_feedback replaces a judge's score with a human correction. The original "
        "assessment is kept, marked valid=False and linked from the new one, so the audit trail survives.",
    ),
    "doc-genai-evaluate": (
        "mlflow.genai.evaluate",
        "https://mlflow.org/docs/latest/genai/eval-monitor/",
        "mlflow.genai.evaluate(data=eval_df, predict_fn=my_app, scorers=[RelevanceToQuery(), Safety()]) runs "
        "the app on each row, scores the traces and logs the scores as feedback on each trace.",
    ),
    "doc-judges": (
        "Built-in LLM judges",
        "https://mlflow.org/docs/latest/genai/eval-monitor/scorers/llm-judge/",
        "Built-in judges include RelevanceToQuery, Correctness, RetrievalGroundedness, RetrievalRelevance, "
        "Safety and Guidelines. Each returns a Feedback with a value and a rationale.",
    ),
    "doc-search-traces": (
        "Searching traces",
        "https://mlflow.org/docs/latest/genai/tracing/search-traces",
        "mlflow.search_traces(filter_string=\"attributes.status = 'OK' AND feedback.user_satisfaction = "
        "'false'\") returns matching traces as a pandas DataFrame; order_by and max_results are supported.",
    ),
    "doc-registry-aliases": (
        "Model registry aliases",
        "https://mlflow.org/docs/latest/ml/model-registry/",
        "Assign an alias such as @champion to a model version and load it with "
        "mlflow.pyfunc.load_model('models:/my_model@champion'); moving the alias redeploys without code changes.",
    ),
    "doc-model-serving": (
        "Databricks Model Serving",
        "https://docs.databricks.com/en/machine-learning/model-serving/",
        "Model Serving exposes registered models as REST endpoints. Endpoints can scale to zero when idle; "
        "a cold start then takes tens of seconds. Provisioned throughput gives predictable latency for LLMs.",
    ),
    "doc-vector-search": (
        "Databricks Vector Search",
        "https://docs.databricks.com/en/generative-ai/vector-search.html",
        "A Delta Sync index keeps embeddings in step with a Delta table. Query it with "
        "index.similarity_search(query_text=..., columns=[...], num_results=5); results carry a score.",
    ),
    "doc-unity-catalog": (
        "Unity Catalog for models",
        "https://docs.databricks.com/en/machine-learning/manage-model-lifecycle/",
        "Register models to Unity Catalog with mlflow.set_registry_uri('databricks-uc'); models are then "
        "named catalog.schema.model and governed like tables.",
    ),
    "doc-inference-tables": (
        "Inference tables",
        "https://docs.databricks.com/en/machine-learning/model-serving/inference-tables.html",
        "Inference tables log every request and response of a serving endpoint to a Delta table, which "
        "you can join with feedback to build evaluation sets.",
    ),
    "doc-chunking": (
        "Chunking strategies for RAG",
        "https://docs.example.com/llmops/chunking",
        "Chunks of 300 to 1000 tokens with 10 to 20 percent overlap are a good start. Smaller chunks raise "
        "precision, larger chunks keep context; evaluate retrieval with labelled queries before tuning.",
    ),
    "doc-prompt-registry": (
        "Prompt Registry",
        "https://mlflow.org/docs/latest/genai/prompt-registry/",
        "mlflow.genai.register_prompt(name='qa', template='Answer {{question}}') versions prompts; load a "
        "version with mlflow.genai.load_prompt('prompts:/qa@production').",
    ),
    "doc-eval-datasets": (
        "Evaluation datasets from production",
        "https://mlflow.org/docs/latest/genai/datasets/",
        "Select traces with negative feedback, add expectations, and save them as an evaluation dataset; "
        "re-run mlflow.genai.evaluate on every prompt or model change.",
    ),
    "doc-async-logging": (
        "Tracing in production",
        "https://mlflow.org/docs/latest/genai/tracing/prod-tracing",
        "Set MLFLOW_ENABLE_ASYNC_TRACE_LOGGING=true so that exporting traces never blocks a request, and "
        "MLFLOW_TRACE_SAMPLING_RATIO to keep a fraction of traces under heavy load.",
    ),
    "doc-otel": (
        "OpenTelemetry export",
        "https://mlflow.org/docs/latest/genai/tracing/opentelemetry",
        "MLflow spans are OpenTelemetry spans. Set OTEL_EXPORTER_OTLP_TRACES_ENDPOINT to send them to any "
        "OTLP collector, alongside or instead of an MLflow tracking server.",
    ),
    "doc-tracking-uri": (
        "Connecting to a tracking server",
        "https://mlflow.org/docs/latest/ml/tracking/",
        "Point the client at a server with MLFLOW_TRACKING_URI=http://host:5000 or mlflow.set_tracking_uri; "
        "mlflow.set_experiment chooses where traces and runs go.",
    ),
    "doc-sessions": (
        "Tracking users and sessions",
        "https://mlflow.org/docs/latest/genai/tracing/track-users-sessions",
        "Call mlflow.update_current_trace(metadata={'mlflow.trace.user': user_id, 'mlflow.trace.session': "
        "session_id}) to group a conversation's traces and filter by user.",
    ),
    "doc-guardrails": (
        "Guardrails",
        "https://docs.example.com/llmops/guardrails",
        "Check inputs for prompt injection and outputs for PII before returning them. Log each check as "
        "CODE feedback so that failures are searchable next to the trace.",
    ),
}


@dataclass
class QA:
    question: str
    answer: str
    docs: list[str]
    quality: str = "good"  # good | weak | bad: drives judge scores and thumbs
    tool: tuple[str, dict, object] | None = None  # (tool name, arguments, result)
    expected: str | None = None
    expected_facts: list[str] = field(default_factory=list)
    comment: str = ""  # an end user's words with their thumbs


QAS = [
    QA(
        "How do I turn on tracing for my OpenAI calls?",
        "Call `mlflow.openai.autolog()` once when your app starts. From then on every call through the OpenAI SDK "
        "is traced, including streaming and tool calls, and token usage is recorded on the span [doc-openai-autolog].",
        ["doc-openai-autolog", "doc-tracing-overview"],
        expected="Call mlflow.openai.autolog() at start-up; OpenAI SDK calls are then traced automatically.",
    ),
    QA(
        "What is the difference between a trace and a span?",
        "A trace is one request through your application; spans are its steps, such as an LLM call, a retrieval "
        "or a tool call. Spans form a tree under a single root span [doc-tracing-overview].",
        ["doc-tracing-overview", "doc-trace-decorator"],
        expected_facts=[
            "A trace is one request",
            "Spans are the steps of a trace",
            "Spans form a tree with one root",
        ],
    ),
    QA(
        "How can I record thumbs up / thumbs down from my users?",
        'Use `mlflow.log_feedback(trace_id=..., name="user_satisfaction", value=True, '
        'source=AssessmentSource(source_type="HUMAN", source_id=user_id))`. The value can be a boolean, a number, '
        "a string, a list or a dict [doc-log-feedback].",
        ["doc-log-feedback", "doc-sessions"],
        expected="mlflow.log_feedback with name user_satisfaction, a boolean value and a HUMAN source.",
    ),
    QA(
        "Can I attach feedback to a single retriever step instead of the whole trace?",
        "Yes. Pass `span_id` to `mlflow.log_feedback` and the feedback is attached to that span, for example the "
        "retriever span, rather than to the trace as a whole [doc-log-feedback].",
        ["doc-log-feedback", "doc-trace-decorator"],
    ),
    QA(
        "Our LLM judge gave a wrong relevance score. How do I correct it without losing the original?",
        "Use `mlflow.override_feedback`. It creates a new assessment with your corrected value and marks the "
        "judge's original as `valid=False`, linked from the new one, so the audit trail is preserved "
        "[doc-override-feedback].",
        ["doc-override-feedback", "doc-judges"],
        expected="mlflow.override_feedback: new assessment, original kept and marked invalid.",
    ),
    QA(
        "Which built-in judges does MLflow have for RAG apps?",
        "For RAG the most useful built-in judges are RelevanceToQuery, RetrievalGroundedness and "
        "RetrievalRelevance, plus Correctness when you have expectations, and Safety and Guidelines for policy "
        "checks [doc-judges].",
        ["doc-judges", "doc-genai-evaluate"],
        expected_facts=[
            "RelevanceToQuery",
            "RetrievalGroundedness",
            "RetrievalRelevance",
            "Correctness",
        ],
    ),
    QA(
        "How do I run an evaluation over a dataset with scorers?",
        "Call `mlflow.genai.evaluate(data=eval_df, predict_fn=my_app, scorers=[RelevanceToQuery(), Safety()])`. It "
        "runs your app on every row, scores each trace and logs the scores as feedback [doc-genai-evaluate].",
        ["doc-genai-evaluate", "doc-judges", "doc-eval-datasets"],
    ),
    QA(
        "How do I find all traces where the user was unhappy?",
        'Search with a filter on the feedback: `mlflow.search_traces(filter_string="feedback.user_satisfaction = '
        "'false'\")`. It returns a pandas DataFrame you can sort with `order_by` [doc-search-traces].",
        ["doc-search-traces", "doc-log-feedback"],
        expected="mlflow.search_traces with filter_string feedback.user_satisfaction = 'false'.",
    ),
    QA(
        "What chunk size should I use for my documentation index?",
        "Start with chunks of roughly 500 tokens and about 15% overlap, then measure retrieval on a set of labelled "
        "queries before tuning; smaller chunks raise precision, larger ones keep more context [doc-chunking].",
        ["doc-chunking", "doc-vector-search"],
        quality="weak",
        comment="Too generic, I wanted numbers for code docs.",
    ),
    QA(
        "How do I query a Databricks Vector Search index from Python?",
        "Get the index from `VectorSearchClient` and call `index.similarity_search(query_text=question, "
        'columns=["chunk_id", "text"], num_results=5)`; each result row carries a similarity score '
        "[doc-vector-search].",
        ["doc-vector-search", "doc-chunking"],
    ),
    QA(
        "Why is the first request to my serving endpoint so slow?",
        "Your endpoint probably scales to zero when idle. The first request after idling waits for a cold start, "
        "which can take tens of seconds. Disable scale-to-zero or use provisioned throughput for steady latency "
        "[doc-model-serving].",
        ["doc-model-serving", "doc-inference-tables"],
        tool=(
            "get_serving_endpoint",
            {"name": "docs-bot-prod"},
            {
                "name": "docs-bot-prod",
                "state": "READY",
                "scale_to_zero_enabled": True,
                "workload_size": "Small",
                "last_scaled_from_zero": "2 minutes ago",
            },
        ),
    ),
    QA(
        "How do I register my model in Unity Catalog?",
        'Set `mlflow.set_registry_uri("databricks-uc")` and register the model under a three-level name such as '
        "`main.docs.docs_bot`. It is then governed like a table [doc-unity-catalog].",
        ["doc-unity-catalog", "doc-registry-aliases"],
    ),
    QA(
        "How do model aliases work for deployment?",
        "Give a model version an alias such as `@champion` and load it with "
        '`mlflow.pyfunc.load_model("models:/docs_bot@champion")`. Moving the alias to a new version redeploys '
        "without changing code [doc-registry-aliases].",
        ["doc-registry-aliases", "doc-unity-catalog"],
    ),
    QA(
        "Can I log requests to my endpoint into a table automatically?",
        "Yes: enable inference tables on the endpoint. Every request and response is written to a Delta table that "
        "you can join with feedback to build evaluation sets [doc-inference-tables].",
        ["doc-inference-tables", "doc-eval-datasets"],
    ),
    QA(
        "How should I version my prompts?",
        'Use the MLflow Prompt Registry: `mlflow.genai.register_prompt(name="qa", template=...)` creates versions '
        'and `mlflow.genai.load_prompt("prompts:/qa@production")` loads the one behind an alias '
        "[doc-prompt-registry].",
        ["doc-prompt-registry", "doc-registry-aliases"],
        expected="Register prompts in the MLflow Prompt Registry and load them by alias.",
    ),
    QA(
        "Does tracing slow down my production app?",
        "It does not have to. Set `MLFLOW_ENABLE_ASYNC_TRACE_LOGGING=true` so exporting never blocks a request, and "
        "`MLFLOW_TRACE_SAMPLING_RATIO` to keep only a fraction of traces under heavy load [doc-async-logging].",
        ["doc-async-logging", "doc-otel"],
        expected_facts=["async trace logging", "sampling ratio"],
    ),
    QA(
        "Can I send MLflow traces to our existing OpenTelemetry collector?",
        "Yes. MLflow spans are OpenTelemetry spans; set `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` to your collector and "
        "they are exported over OTLP [doc-otel].",
        ["doc-otel", "doc-async-logging"],
    ),
    QA(
        "How do I group the traces of one chat conversation?",
        'Call `mlflow.update_current_trace(metadata={"mlflow.trace.session": session_id, "mlflow.trace.user": '
        "user_id})` inside the traced function; you can then filter traces by session or user [doc-sessions].",
        ["doc-sessions", "doc-search-traces"],
    ),
    QA(
        "How do I point my app at a remote tracking server?",
        "Set `MLFLOW_TRACKING_URI=http://your-server:5000` (or call `mlflow.set_tracking_uri`) and choose the "
        "experiment with `mlflow.set_experiment` [doc-tracking-uri].",
        ["doc-tracking-uri", "doc-otel"],
        expected="Set MLFLOW_TRACKING_URI (or mlflow.set_tracking_uri) and mlflow.set_experiment.",
    ),
    QA(
        "What should I store as expectations?",
        "Store what a correct output looks like: an `expected_answer` string, or `expected_facts` as a list of "
        "facts the answer must contain. Log them with `mlflow.log_expectation` [doc-expectations].",
        ["doc-expectations", "doc-eval-datasets"],
    ),
    QA(
        "How do I build an eval set from production traffic?",
        "Search traces with negative feedback, add expectations to them, and save them as an evaluation dataset; "
        "then re-run `mlflow.genai.evaluate` whenever the prompt or model changes [doc-eval-datasets].",
        ["doc-eval-datasets", "doc-search-traces", "doc-expectations"],
    ),
    QA(
        "How do I stop the bot from leaking customer emails?",
        "Add an output guardrail that detects PII such as email addresses before the answer is returned, and log "
        "the check as CODE feedback so failures are searchable next to the trace [doc-guardrails].",
        ["doc-guardrails", "doc-log-feedback"],
    ),
    QA(
        "Is mlflow.trace compatible with async functions?",
        "The context I have does not say whether @mlflow.trace supports async functions. Please check the "
        "manual tracing guide [doc-trace-decorator].",
        ["doc-trace-decorator", "doc-tracing-overview"],
        quality="weak",
        comment="It does support async, the bot should know this.",
    ),
    QA(
        "What version of MLflow is the latest?",
        "The latest release in the package index is MLflow 3.13.0 [tool:pypi_latest_version].",
        ["doc-tracking-uri"],
        tool=(
            "pypi_latest_version",
            {"package": "mlflow"},
            {"package": "mlflow", "version": "3.13.0", "released": "2026-10-02"},
        ),
    ),
    QA(
        "How many traces did docs-bot-prod log yesterday?",
        "Yesterday docs-bot-prod logged 18,432 traces, 2.1% of them with errors (mostly rate limits).",
        ["doc-search-traces", "doc-inference-tables"],
        tool=(
            "run_sql",
            {
                "warehouse": "ops-small",
                "query": "SELECT count(*) AS traces, avg(CASE WHEN state = 'ERROR' THEN 1 ELSE 0 END) AS "
                "error_rate FROM main.ops.trace_log WHERE date = current_date() - 1",
            },
            {"columns": ["traces", "error_rate"], "rows": [[18432, 0.021]]},
        ),
    ),
    QA(
        "How do I log a numeric score from my own code check?",
        'Call `mlflow.log_feedback` with a numeric `value` and `source=AssessmentSource(source_type="CODE", '
        'source_id="my_check_v1")`; dictionaries work too if the check returns several fields [doc-log-feedback].',
        ["doc-log-feedback", "doc-guardrails"],
    ),
    QA(
        "What does RetrievalGroundedness check?",
        "It checks whether the answer is supported by the retrieved documents, that is whether every claim can be "
        "traced back to the context rather than invented [doc-judges].",
        ["doc-judges", "doc-genai-evaluate"],
    ),
    QA(
        "Can I use my own judge prompt?",
        "Yes, with the Guidelines judge you write the criteria in plain language; it returns pass or fail with a "
        "rationale, logged as feedback on each trace [doc-judges].",
        ["doc-judges", "doc-prompt-registry"],
    ),
    QA(
        "How do I delete traces older than 90 days?",
        "Use the experiment's retention settings.",
        ["doc-tracking-uri", "doc-search-traces"],
        quality="bad",
        comment="That setting does not exist. Useless answer.",
    ),
    QA(
        "Why do my retriever spans show no documents in the UI?",
        "UIs render retriever outputs when the span type is RETRIEVER and the outputs are a list of documents. "
        "Decorate the function with `@mlflow.trace(span_type=SpanType.RETRIEVER)` and return documents with "
        "`page_content` and `metadata` [doc-trace-decorator].",
        ["doc-trace-decorator", "doc-vector-search"],
    ),
    QA(
        "How do I compare two prompt versions on the same questions?",
        "Load each version with `mlflow.genai.load_prompt`, run `mlflow.genai.evaluate` with the same dataset and "
        "scorers for both, and compare the feedback of the two runs [doc-prompt-registry] [doc-genai-evaluate].",
        ["doc-prompt-registry", "doc-genai-evaluate", "doc-eval-datasets"],
    ),
    QA(
        "What is the token limit of gpt-4o-mini?",
        "gpt-4o-mini has a 128k token context window; long retrieved contexts should be trimmed well below that.",
        ["doc-chunking"],
        quality="weak",
    ),
]

FOLLOW_UPS = {  # index of a QA → index of the QA the same user asked next in the same session
    2: 3,
    4: 5,
    9: 10,
    12: 13,
    17: 18,
}

FAILURES = [
    # (question, failing span type, exception type, message)
    (
        "How do I enable tracing for LangChain?",
        "RETRIEVER",
        "databricks.sdk.errors.platform.TemporarilyUnavailable",
        "Vector Search endpoint 'docs-vs-endpoint' is scaling up; retry in 30 seconds (HTTP 503).",
    ),
    (
        "Summarize every MLflow release note since 2.0 with all breaking changes in one table.",
        "CHAT_MODEL",
        "openai.BadRequestError",
        "Error code: 400 - This model's maximum context length is 128000 tokens. However, your messages resulted "
        "in 131204 tokens. Please reduce the length of the messages.",
    ),
    (
        "What's the difference between Correctness and RelevanceToQuery?",
        "CHAT_MODEL",
        "openai.RateLimitError",
        f"Error code: 429 - Rate limit reached for {MODEL} on tokens per min (TPM): Limit 200000, Used 199812, "
        "Requested 1873. Please try again in 561ms.",
    ),
]

STACKS = {
    "RETRIEVER": [
        ("app/rag.py", 88, "answer_question", "docs = retrieve(question)"),
        (
            "app/retrieval.py",
            41,
            "retrieve",
            "result = index.similarity_search(query_text=query, num_results=4)",
        ),
        (
            "databricks/vector_search/index.py",
            212,
            "similarity_search",
            'return self._request("POST", path, body)',
        ),
    ],
    "CHAT_MODEL": [
        (
            "app/rag.py",
            97,
            "answer_question",
            "completion = client.chat.completions.create(**request)",
        ),
        ("openai/_utils/_utils.py", 287, "wrapper", "return func(*args, **kwargs)"),
        (
            "openai/_base_client.py",
            1047,
            "request",
            "raise self._make_status_error_from_response(err.response) from None",
        ),
    ],
}

TONES = ["professional", "friendly", "concise", "too_technical"]
USERS = [f"user_{n:04d}" for n in (17, 42, 58, 73, 101, 128, 256, 311, 404, 512)]
RELEASES = [f"2.{n}.0" for n in range(23)] + [f"3.{n}.0" for n in range(14)]
HIGHLIGHTS = [
    "tracing UI improvements",
    "new LLM judge",
    "faster search_traces",
    "model registry fixes",
    "prompt registry aliases",
    "OpenTelemetry export",
    "evaluation dataset API",
    "async trace logging",
    "Unity Catalog integration",
    "deprecated legacy evaluate arguments",
]


def stable_hex(*parts, length: int) -> str:
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:length]


def words(text: str) -> int:
    return max(1, len(text.split()))


def exception_event(exc_type: str, message: str, frames, time_ns: int) -> dict:
    stack = (
        "Traceback (most recent call last):\n"
        + "".join(f'  File "{path}", line {line}, in {func}\n    {code}\n' for path, line, func, code in frames)
        + f"{exc_type}: {message}"
    )
    return {
        "name": "exception",
        "timestamp_ns": time_ns,
        "attributes": {
            "exception.type": exc_type,
            "exception.message": message,
            "exception.stacktrace": stack,
        },
    }


class TraceBuilder:
    """Spans of one trace, with deterministic ids and a running clock in nanoseconds."""

    def __init__(self, key: str, start: datetime):
        self.key = key
        self.trace_id = "tr-" + stable_hex("feedbackhub-demo", key, length=32)
        self.clock = int(start.timestamp() * 1e9)
        self.spans: list[dict] = []
        self.by_type: dict[str, str] = {}

    def span(
        self,
        name,
        span_type,
        parent=None,
        *,
        inputs=None,
        outputs=None,
        ms=10.0,
        attributes=None,
        status="OK",
        events=None,
        advance=True,
    ) -> dict:
        start = self.clock
        end = start + int(ms * 1e6)
        message = events[0]["attributes"]["exception.message"][:200] if status == "ERROR" and events else ""
        span = {
            "span_id": stable_hex(self.key, len(self.spans), length=16),
            "parent_span_id": parent["span_id"] if parent else None,
            "name": name,
            "span_type": span_type,
            "start_time_ns": start,
            "end_time_ns": end,
            "status_code": status,
            "status_message": message,
            "inputs": inputs,
            "outputs": outputs,
            "attributes": {"mlflow.spanType": span_type, **(attributes or {})},
            "events": events or [],
        }
        self.spans.append(span)
        self.by_type.setdefault(span_type, span["span_id"])
        if advance:
            self.clock = end
        return span

    def close(self, span: dict, status: str = "OK", events=None) -> None:
        """End a parent span after its children."""
        span["end_time_ns"] = self.clock + 2_000_000
        span["status_code"] = status
        if events:
            span["events"] = events
            span["status_message"] = events[0]["attributes"]["exception.message"][:200]
        self.clock = span["end_time_ns"]


def chat_request(messages, **extra) -> dict:
    return {"model": MODEL, "messages": messages, "temperature": 0.1, **extra}


def chat_response(key: str, message: dict, prompt_tokens: int, finish="stop") -> dict:
    completion_tokens = words(message.get("content") or "x") * 4 // 3 + 8
    return {
        "id": "chatcmpl-" + stable_hex("completion", key, prompt_tokens, length=24),
        "object": "chat.completion",
        "created": 0,
        "model": f"{MODEL}-2024-07-18",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def token_usage(response: dict) -> dict:
    usage = response["usage"]
    return {
        "mlflow.chat.tokenUsage": {
            "input_tokens": usage["prompt_tokens"],
            "output_tokens": usage["completion_tokens"],
            "total_tokens": usage["total_tokens"],
        },
        "llm.model_name": MODEL,
    }


def retrieved(rng: random.Random, doc_ids: list[str]) -> list[dict]:
    """The retriever's top 4: the relevant documents first, then near misses with lower scores."""
    others = sorted(set(DOCS) - set(doc_ids))
    picks = doc_ids[:3] + rng.sample(others, 4 - len(doc_ids[:3]))
    results = []
    score = rng.uniform(0.86, 0.93)
    for rank, doc_id in enumerate(picks):
        title, uri, text = DOCS[doc_id]
        results.append(
            {
                "id": doc_id,
                "page_content": text,
                "metadata": {
                    "doc_uri": uri,
                    "title": title,
                    "chunk_id": f"{doc_id}#{rank}",
                    "score": round(score, 4),
                },
            }
        )
        score -= rng.uniform(0.03, 0.09) if doc_id in doc_ids else rng.uniform(0.12, 0.2)
    return results


def context_block(documents: list[dict]) -> str:
    return "\n\n".join(f"[{doc['id']}] {doc['metadata']['title']}\n{doc['page_content']}" for doc in documents)


def rag_trace(rng: random.Random, key: str, start: datetime, qa: QA, failure=None) -> TraceBuilder:
    """root CHAIN → embed (EMBEDDING) → vector_search (RETRIEVER) → [chat + TOOL + chat] or chat (CHAT_MODEL)."""
    builder = TraceBuilder(key, start)
    question = qa.question
    root = builder.span(
        "answer_question",
        "CHAIN",
        inputs={"question": question},
        ms=0,
        advance=False,
        attributes={"app.version": "1.4.2"},
    )
    builder.clock += 1_000_000
    builder.span(
        "embed_query",
        "EMBEDDING",
        root,
        inputs={"input": [question], "model": "databricks-gte-large-en"},
        outputs={"dimensions": 1024, "count": 1},
        ms=rng.uniform(25, 80),
    )
    fails_at = failure[1] if failure else None
    if fails_at == "RETRIEVER":
        event = exception_event(failure[2], failure[3], STACKS["RETRIEVER"], builder.clock + 30_000_000_000)
        builder.span(
            "vector_search",
            "RETRIEVER",
            root,
            inputs={"query": question, "num_results": 4},
            ms=30_000 + rng.uniform(0, 200),
            status="ERROR",
            events=[event],
            attributes={"vector_search.index": VECTOR_INDEX},
        )
        builder.close(root, "ERROR", [event])
        return builder
    documents = retrieved(rng, qa.docs)
    builder.span(
        "vector_search",
        "RETRIEVER",
        root,
        inputs={"query": question, "num_results": 4},
        outputs=documents,
        ms=rng.uniform(60, 350),
        attributes={"vector_search.index": VECTOR_INDEX},
    )
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {
            "role": "user",
            "content": f"Context:\n{context_block(documents)}\n\nQuestion: {question}",
        },
    ]
    prompt_tokens = sum(words(m["content"]) for m in messages) * 4 // 3
    if fails_at == "CHAT_MODEL":
        event = exception_event(failure[2], failure[3], STACKS["CHAT_MODEL"], builder.clock + 400_000_000)
        builder.span(
            "ChatCompletion",
            "CHAT_MODEL",
            root,
            inputs=chat_request(messages),
            ms=rng.uniform(300, 900),
            status="ERROR",
            events=[event],
            attributes={"llm.model_name": MODEL},
        )
        builder.close(root, "ERROR", [event])
        return builder
    if qa.tool:
        tool_name, arguments, result = qa.tool
        call_id = "call_" + stable_hex("tool", key, length=20)
        tools = [
            {
                "type": "function",
                "function": {"name": tool_name, "parameters": {"type": "object"}},
            }
        ]
        first_message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": tool_name, "arguments": _json(arguments)},
                }
            ],
        }
        response = chat_response(key + "-1", first_message, prompt_tokens, finish="tool_calls")
        builder.span(
            "ChatCompletion",
            "CHAT_MODEL",
            root,
            inputs=chat_request(messages, tools=tools),
            outputs=response,
            ms=rng.uniform(500, 1400),
            attributes=token_usage(response),
        )
        builder.span(
            tool_name,
            "TOOL",
            root,
            inputs=arguments,
            outputs=result,
            ms=rng.uniform(80, 900),
            attributes={"tool.call_id": call_id},
        )
        messages = [
            *messages,
            first_message,
            {"role": "tool", "tool_call_id": call_id, "content": _json(result)},
        ]
        prompt_tokens += 60
    final = {"role": "assistant", "content": qa.answer}
    response = chat_response(key, final, prompt_tokens)
    builder.span(
        "ChatCompletion",
        "CHAT_MODEL",
        root,
        inputs=chat_request(messages),
        outputs=response,
        ms=rng.uniform(700, 3800),
        attributes=token_usage(response),
    )
    root["outputs"] = qa.answer
    builder.close(root)
    return builder


def agent_trace(rng: random.Random, key: str, start: datetime) -> TraceBuilder:
    """An agent loop over every release: 150 spans (root, 37 × [step, plan, tool, retrieval], final answer)."""
    builder = TraceBuilder(key, start)
    task = "Which MLflow releases since 2.0 changed the tracing or feedback APIs? One line per release."
    root = builder.span(
        "release_notes_agent",
        "AGENT",
        inputs={"task": task},
        ms=0,
        advance=False,
        attributes={"agent.max_iterations": 40},
    )
    findings = []
    for step, version in enumerate(RELEASES):
        chain = builder.span(
            f"step_{step + 1}",
            "CHAIN",
            root,
            inputs={"version": version},
            ms=0,
            advance=False,
        )
        builder.clock += 500_000
        thought = f"Next I need the release notes of MLflow {version}."
        plan = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": f"call_{stable_hex(key, step, length=12)}",
                    "type": "function",
                    "function": {
                        "name": "fetch_release_notes",
                        "arguments": _json({"version": version}),
                    },
                }
            ],
        }
        response = chat_response(f"{key}-{step}", plan, 900 + 120 * step, finish="tool_calls")
        builder.span(
            "plan_next_step",
            "CHAT_MODEL",
            chain,
            ms=rng.uniform(400, 1200),
            inputs=chat_request(
                [
                    {
                        "role": "system",
                        "content": "You are a release-notes research agent.",
                    },
                    {"role": "user", "content": task},
                    {"role": "assistant", "content": thought},
                ]
            ),
            outputs=response,
            attributes=token_usage(response),
        )
        highlight = HIGHLIGHTS[rng.randrange(len(HIGHLIGHTS))]
        notes = {
            "version": version,
            "highlights": [highlight],
            "bug_fixes": rng.randint(8, 60),
        }
        builder.span(
            "fetch_release_notes",
            "TOOL",
            chain,
            inputs={"version": version},
            outputs=notes,
            ms=rng.uniform(60, 300),
        )
        builder.span(
            "search_docs",
            "RETRIEVER",
            chain,
            inputs={"query": f"MLflow {version} {highlight}"},
            outputs=retrieved(rng, ["doc-tracing-overview"]),
            ms=rng.uniform(40, 160),
            attributes={"vector_search.index": VECTOR_INDEX},
        )
        builder.close(chain)
        if "tracing" in highlight or "judge" in highlight or "trace" in highlight:
            findings.append(f"{version}: {highlight}")
    answer = "Releases that touched tracing or feedback:\n" + "\n".join(findings or ["none found"])
    final = {"role": "assistant", "content": answer}
    response = chat_response(key + "-final", final, 6200)
    builder.span(
        "write_answer",
        "CHAT_MODEL",
        root,
        inputs=chat_request([{"role": "user", "content": task}]),
        outputs=response,
        ms=rng.uniform(2000, 4000),
        attributes=token_usage(response),
    )
    root["outputs"] = answer
    builder.close(root)
    return builder


def _json(value) -> str:
    return json.dumps(value, separators=(",", ":"))


@dataclass
class Cast:
    """Who writes the demo: the app's key, the reviewer, the admin."""

    app: Actor
    reviewer: Actor
    admin: Actor


class Command(BaseCommand):
    help = (
        "Load demo data (a RAG docs assistant: traces, feedback, expectations), a demo admin (admin/admin), "
        "a reviewer (reviewer/reviewer) and a demo API key. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--allow-production",
            action="store_true",
            help="Run even with DEBUG off (creates well-known passwords and a well-known key).",
        )

    def handle(self, *args, allow_production=False, **options):
        if not settings.DEBUG and not allow_production:
            raise CommandError(
                "DEBUG is off: the demo creates known passwords and a known API key. "
                "Pass --allow-production if you really want that."
            )
        raw_key = os.environ.get("FEEDBACKHUB_DEMO_KEY") or DEFAULT_DEMO_KEY
        system = Actor.for_system("load_demo")
        with transaction.atomic():
            admin_user = self._user("admin", staff=True)
            reviewer_user = self._user("reviewer", staff=False)
            experiment = self._experiment(
                DEMO_EXPERIMENT,
                "A RAG assistant answering questions about MLflow, Databricks and LLM ops.",
                system,
            )
            second = self._experiment(SECOND_EXPERIMENT, "A text-to-SQL agent in development.", system)
            trace_services.set_membership(
                experiment=experiment,
                user=reviewer_user,
                role=Membership.Role.REVIEWER,
                actor=system,
            )
            # Scoped to rag-demo only, so clients may leave out experiment_id when posting traces.
            api_key = self._api_key(raw_key, [experiment], system)
        cast = Cast(
            app=Actor.for_key(api_key),
            reviewer=Actor.for_user(reviewer_user),
            admin=Actor.for_user(admin_user),
        )
        loaded = []
        # Each experiment loads in one transaction: a failed load leaves nothing that a rerun would skip.
        with transaction.atomic():
            if not experiment.traces.exists():
                loaded.append(f"{self._load_rag(experiment, cast)} traces into {experiment.name}")
        with transaction.atomic():
            if not second.traces.exists():
                loaded.append(f"{self._load_sql(second, system)} traces into {second.name}")
        self.stdout.write("Loaded " + "; ".join(loaded) + "." if loaded else "Demo data already loaded; nothing to do.")
        self.stdout.write(
            "\n  Demo logins:   admin / admin (staff) and reviewer / reviewer (reviewer of rag-demo)\n"
            f"  Demo API key:  {raw_key}  (experiment {DEMO_EXPERIMENT}, id {experiment.pk})\n"
        )

    # --- accounts and containers ---------------------------------------------------------------

    def _user(self, username: str, *, staff: bool):
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User.objects.create_user(
                username=username,
                password=username,
                is_staff=staff,
                is_superuser=staff,
                email=f"{username}@example.com",
            )
        return user

    def _experiment(self, name: str, description: str, actor: Actor) -> Experiment:
        return Experiment.objects.filter(name=name).first() or trace_services.create_experiment(
            name=name, description=description, actor=actor
        )

    def _api_key(self, raw_key: str, experiments, actor: Actor) -> ApiKey:
        api_key = ApiKey.objects.filter(key_hash=ApiKey.hash(raw_key)).first()
        if api_key is None:
            api_key, _ = trace_services.create_api_key(
                experiments=experiments,
                label=DEMO_KEY_LABEL,
                actor=actor,
                raw_key=raw_key,
            )
        elif api_key.revoked_at is not None:
            self.stderr.write(f"Warning: the demo key {api_key.prefix}… was revoked; it will answer 401.")
        return api_key

    # --- the RAG experiment ---------------------------------------------------------------------

    def _load_rag(self, experiment: Experiment, cast: Cast) -> int:
        rng = random.Random(20240611)
        now = timezone.now().replace(minute=0, second=0, microsecond=0)
        first_day = now - timedelta(days=7)
        plan = [("qa", index) for index in range(len(QAS))]
        plan[6:6] = [("fail", 0)]
        plan[15:15] = [("fail", 1)]
        plan[27:27] = [("fail", 2)]
        plan[20:20] = [("agent", 0)]
        sessions: dict[int, tuple[str, str]] = {}
        traces = []
        for position, (kind, index) in enumerate(plan):
            # Spread over seven days in order, with working-hours jitter.
            start = first_day + timedelta(
                hours=position * 7 * 24 / len(plan) + rng.uniform(0, 3),
                minutes=rng.uniform(0, 59),
            )
            key = f"{experiment.name}-{kind}-{index}"
            if kind == "qa":
                qa = QAS[index]
                builder = rag_trace(rng, key, start, qa)
            elif kind == "fail":
                qa = QA(FAILURES[index][0], "", ["doc-tracing-overview"])
                builder = rag_trace(rng, key, start, qa, failure=FAILURES[index])
            else:
                qa = None
                builder = agent_trace(rng, key, start)
            # A follow-up question continues the session (and user) of the question before it.
            user, session = (
                sessions.get(index)
                if kind == "qa" and index in sessions
                else (
                    rng.choice(USERS),
                    "sess-" + stable_hex(key, "session", length=12),
                )
            )
            if kind == "qa" and index in FOLLOW_UPS:
                sessions[FOLLOW_UPS[index]] = (user, session)
            trace, _ = trace_services.ingest_trace(
                experiment=experiment,
                actor=cast.app,
                channel="api",
                trace_id=builder.trace_id,
                spans=builder.spans,
                client_request_id="req-" + stable_hex(key, "request", length=16),
                tags={
                    "environment": "production",
                    "app_version": "1.4.2",
                    "model": MODEL,
                },
                metadata={
                    "mlflow.trace.user": user,
                    "mlflow.trace.session": session,
                    "region": "eu-west-1",
                },
            )
            traces.append((trace, kind, qa, builder))
        self._feedback(rng, traces, cast)
        return len(traces)

    def _feedback(self, rng: random.Random, traces, cast: Cast) -> None:
        """Every value type from every source, with overrides, an edit and expectations."""
        judge_timed_out = False
        overridden = 0
        now = timezone.now()
        for number, (trace, kind, qa, builder) in enumerate(traces):
            at = trace.request_time
            failed = kind == "fail"
            quality = qa.quality if qa else "good"

            def later(minutes):
                return min(at + timedelta(minutes=minutes), now)

            def feedback(name, value=None, *, actor=cast.app, channel="api", minutes=5, **kwargs):
                return services.log_feedback(
                    trace=trace,
                    name=name,
                    value=value,
                    actor=actor,
                    channel=channel,
                    create_time=later(minutes),
                    **kwargs,
                )

            # End users: thumbs up/down (boolean) for about two thirds of the traces.
            if failed or rng.random() < 0.65:
                happy = not failed and (quality == "good" or (quality == "weak" and rng.random() < 0.3))
                comment = qa.comment if qa and qa.comment and not happy else ("The bot errored out." if failed else "")
                feedback(
                    "user_satisfaction",
                    happy,
                    source_type="HUMAN",
                    source_id=trace.user_id,
                    minutes=2,
                    rationale=comment,
                )
            if failed:
                continue
            # LLM judge: relevance 0–1 with a rationale; one judge call timed out (error only).
            if not judge_timed_out and number >= 11:
                judge_timed_out = True
                feedback(
                    "relevance",
                    None,
                    source_type="LLM_JUDGE",
                    source_id=JUDGE,
                    channel="mlflow",
                    minutes=30,
                    error={
                        "error_code": "TIMEOUT",
                        "error_message": "Judge call to openai:/gpt-4o-mini timed out after 30 s.",
                        "stack_trace": "Traceback (most recent call last):\n  File "
                        '"mlflow/genai/judges/utils.py", line 211, in invoke_judge_model\n'
                        "openai.APITimeoutError: Request timed out.",
                    },
                )
            else:
                score = {
                    "good": rng.uniform(0.78, 0.98),
                    "weak": rng.uniform(0.45, 0.7),
                    "bad": rng.uniform(0.05, 0.3),
                }[quality]
                rationale = {
                    "good": "The answer addresses the question directly and cites the retrieved documentation.",
                    "weak": "The answer is related but generic; it does not fully resolve the question.",
                    "bad": "The answer does not address the question and invents a setting.",
                }[quality]
                # Twice the judge is wrong about a good answer, and a reviewer corrects it below.
                judge_wrong = overridden < 2 and quality == "good" and number >= 4 and number % 5 == 4
                if judge_wrong:
                    score, rationale = (
                        rng.uniform(0.2, 0.4),
                        "The answer seems to miss the version the user asked about.",
                    )
                relevance = feedback(
                    "relevance",
                    round(score, 2),
                    source_type="LLM_JUDGE",
                    source_id=JUDGE,
                    channel="mlflow",
                    minutes=30,
                    rationale=rationale,
                    metadata={"judge": "RelevanceToQuery", "judge_version": "3"},
                )
                if judge_wrong:
                    overridden += 1
                    services.override_feedback(
                        assessment=relevance,
                        actor=cast.reviewer,
                        channel="ui",
                        value=0.95,
                        source_type="HUMAN",
                        source_id="reviewer",
                        rationale="The judge missed that the answer quotes the exact API.",
                    )
            # The judge also scores the retriever span of every other trace.
            if number % 2 == 0 and "RETRIEVER" in builder.by_type:
                feedback(
                    "retrieval_relevance",
                    round(rng.uniform(0.5, 0.97), 2),
                    source_type="LLM_JUDGE",
                    source_id=JUDGE,
                    channel="mlflow",
                    minutes=31,
                    span_id=builder.by_type["RETRIEVER"],
                    rationale="3 of 4 retrieved chunks are relevant to the question.",
                )
            # Categorical tone label from a classifier judge.
            if number % 3 == 0:
                feedback(
                    "tone",
                    TONES[rng.randrange(len(TONES))],
                    source_type="LLM_JUDGE",
                    source_id="databricks:/tone-classifier",
                    channel="mlflow",
                    minutes=32,
                )
            # Code checks: a structured result and the list of cited documents.
            if qa:
                cited = [doc for doc in qa.docs if f"[{doc}]" in qa.answer]
                feedback(
                    "format_check",
                    {
                        "has_citation": bool(cited),
                        "word_count": words(qa.answer),
                        "code_blocks": qa.answer.count("`") // 2,
                        "passed": bool(cited),
                    },
                    source_type="CODE",
                    source_id="checks.response_format@v2",
                    minutes=1,
                )
                if number % 2 == 1:
                    feedback(
                        "cited_doc_ids",
                        cited,
                        source_type="CODE",
                        source_id="checks.citations@v1",
                        minutes=1,
                    )
            # Reviewers: a 1–5 rating on some traces, the admin as a second rater on two of them.
            if number % 3 == 1 or kind == "agent":
                rating = {
                    "good": rng.choice([4, 5]),
                    "weak": rng.choice([2, 3]),
                    "bad": 1,
                }[quality]
                rated = feedback(
                    "rating",
                    rating,
                    actor=cast.reviewer,
                    channel="ui",
                    minutes=60 * 20,
                    source_type="HUMAN",
                    source_id="reviewer",
                )
                if number in (1, 7):
                    feedback(
                        "rating",
                        max(1, rating - 1),
                        actor=cast.admin,
                        channel="ui",
                        minutes=60 * 26,
                        source_type="HUMAN",
                        source_id="admin",
                        rationale="Second opinion: a bit long.",
                    )
                if number == 4:
                    services.update_assessment(
                        assessment=rated,
                        actor=cast.reviewer,
                        channel="ui",
                        value=min(5, rating + 1),
                        rationale="Re-read it: it is complete.",
                    )
            # Expectations (ground truth) written by the reviewer.
            if qa and qa.expected:
                services.log_expectation(
                    trace=trace,
                    name="expected_answer",
                    value=qa.expected,
                    actor=cast.reviewer,
                    channel="ui",
                    source_type="HUMAN",
                    source_id="reviewer",
                    create_time=later(60 * 24),
                )
            if qa and qa.expected_facts:
                services.log_expectation(
                    trace=trace,
                    name="expected_facts",
                    value=qa.expected_facts,
                    actor=cast.reviewer,
                    channel="ui",
                    source_type="HUMAN",
                    source_id="reviewer",
                    create_time=later(60 * 24),
                )

    # --- a second, small experiment -----------------------------------------------------------

    def _load_sql(self, experiment: Experiment, actor: Actor) -> int:
        rng = random.Random(7)
        now = timezone.now().replace(minute=0, second=0, microsecond=0)
        questions = [
            (
                "Top 5 customers by revenue last quarter",
                "SELECT customer_id, sum(amount) AS revenue FROM sales WHERE quarter = '2026-Q3' "
                "GROUP BY customer_id ORDER BY revenue DESC LIMIT 5",
            ),
            (
                "How many orders were refunded in September?",
                "SELECT count(*) FROM orders WHERE status = 'refunded' AND month(created_at) = 9",
            ),
            (
                "Average delivery time per region",
                "SELECT region, avg(delivery_days) FROM shipments GROUP BY region",
            ),
            (
                "Which products were never ordered?",
                "SELECT p.id FROM products p LEFT JOIN order_items i ON i.product_id = p.id WHERE i.id IS NULL",
            ),
            (
                "Daily active users for the last week",
                "SELECT date, count(DISTINCT user_id) FROM events WHERE date >= current_date() - 7 GROUP BY date",
            ),
        ]
        for index, (question, sql) in enumerate(questions):
            key = f"{experiment.name}-{index}"
            builder = TraceBuilder(key, now - timedelta(days=2, hours=-index * 5))
            root = builder.span("sql_agent", "AGENT", inputs={"question": question}, ms=0, advance=False)
            builder.clock += 1_000_000
            message = {"role": "assistant", "content": sql}
            response = chat_response(key, message, 420)
            builder.span(
                "generate_sql",
                "CHAT_MODEL",
                root,
                ms=rng.uniform(600, 1500),
                outputs=response,
                inputs=chat_request(
                    [
                        {"role": "system", "content": "Write one Spark SQL query."},
                        {"role": "user", "content": question},
                    ]
                ),
                attributes=token_usage(response),
            )
            builder.span(
                "run_sql",
                "TOOL",
                root,
                inputs={"query": sql},
                ms=rng.uniform(200, 2500),
                outputs={"row_count": rng.randint(1, 40)},
            )
            root["outputs"] = {"sql": sql}
            builder.close(root)
            trace, _ = trace_services.ingest_trace(
                experiment=experiment,
                actor=actor,
                channel="api",
                trace_id=builder.trace_id,
                spans=builder.spans,
                tags={"environment": "dev"},
            )
            services.log_feedback(
                trace=trace,
                name="sql_executes",
                value=index != 3,
                actor=actor,
                channel="api",
                source_type="CODE",
                source_id="checks.sql_dry_run@v1",
            )
        return len(questions)
