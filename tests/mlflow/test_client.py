"""The real mlflow tracing client (mlflow-tracing 3.17.2) against a live FeedbackHub, unchanged
but for MLFLOW_TRACKING_URI and MLFLOW_TRACKING_TOKEN."""

import pytest

from assessments.models import Assessment, Revision
from traces.models import Experiment, Span, Trace

pytestmark = pytest.mark.live


def traced_app(mlflow):
    """The kind of app the mlflow docs show: a traced function with a retriever step."""

    @mlflow.trace
    def answer_question(question: str, user_id: str, session_id: str) -> str:
        mlflow.update_current_trace(
            tags={"env": "demo", "app_version": "0.1.0"},
            metadata={"mlflow.trace.user": user_id, "mlflow.trace.session": session_id},
            client_request_id=f"req-{user_id}",
        )
        with mlflow.start_span("retrieve_docs", span_type="RETRIEVER") as span:
            span.set_inputs({"query": question, "top_k": 2})
            span.set_outputs([{"page_content": "MLflow is open source."}])
            span.set_attribute("retriever.latency_ms", 3)
        return "MLflow is an open source platform for the ML lifecycle."

    return answer_question


def run(mlflow, app, *args, **kwargs):
    app(*args, **kwargs)
    trace_id = mlflow.get_last_active_trace_id()
    mlflow.flush_trace_async_logging()
    return trace_id


def test_set_experiment_creates_once_and_the_key_may_use_it(mlflow, key):
    first = mlflow.set_experiment("feedback-demo")
    again = mlflow.set_experiment("feedback-demo")
    assert first.experiment_id == again.experiment_id == str(Experiment.objects.get(name="feedback-demo").pk)
    assert key[0].experiments.filter(name="feedback-demo").exists()


def test_traced_function_and_get_trace(mlflow, experiment):
    mlflow.set_experiment(experiment_id=str(experiment.pk))
    trace_id = run(mlflow, traced_app(mlflow), "What is MLflow?", "user_123", "sess-1")
    stored = Trace.objects.get(pk=trace_id)
    assert (stored.experiment, stored.name, stored.state, stored.span_count) == (experiment, "answer_question", "OK", 2)
    assert stored.tags == {"env": "demo", "app_version": "0.1.0"}
    assert (stored.user_id, stored.session_id, stored.client_request_id) == ("user_123", "sess-1", "req-user_123")
    retriever = Span.objects.get(trace=stored, name="retrieve_docs")
    assert (retriever.span_type, retriever.inputs, retriever.attributes["retriever.latency_ms"]) == (
        "RETRIEVER",
        {"query": "What is MLflow?", "top_k": 2},
        3,
    )

    trace = mlflow.get_trace(trace_id)
    assert trace.info.trace_id == trace_id and trace.info.state.value == "OK"
    assert trace.info.tags["env"] == "demo" and trace.info.request_metadata["mlflow.trace.user"] == "user_123"
    assert [span.name for span in trace.data.spans] == ["answer_question", "retrieve_docs"]
    root, child = trace.data.spans
    assert root.inputs == {"question": "What is MLflow?", "user_id": "user_123", "session_id": "sess-1"}
    assert root.outputs == "MLflow is an open source platform for the ML lifecycle."
    assert child.span_type == "RETRIEVER" and child.parent_id == root.span_id
    assert child.outputs == [{"page_content": "MLflow is open source."}]
    assert mlflow.get_trace("tr-" + "0" * 32) is None  # unknown: None with a warning, as against MLflow


def test_failed_function_is_an_error_trace(mlflow, experiment):
    mlflow.set_experiment(experiment_id=str(experiment.pk))

    @mlflow.trace
    def broken():
        raise ValueError("boom")

    with pytest.raises(ValueError):
        broken()
    trace_id = mlflow.get_last_active_trace_id()
    mlflow.flush_trace_async_logging()
    stored = Trace.objects.get(pk=trace_id)
    assert stored.state == "ERROR"
    [span] = stored.spans.all()
    assert span.status_code == "ERROR" and "boom" in span.status_message
    assert span.events[0]["name"] == "exception"
    assert mlflow.get_trace(trace_id).data.spans[0].events[0].attributes["exception.message"] == "boom"


def test_assessment_calls(mlflow, experiment):
    from mlflow.entities import AssessmentError, AssessmentSource, AssessmentSourceType, Feedback

    mlflow.set_experiment(experiment_id=str(experiment.pk))
    trace_id = run(mlflow, traced_app(mlflow), "What is MLflow?", "user_123", "sess-1")
    human = AssessmentSource(source_type=AssessmentSourceType.HUMAN, source_id="user_123")
    judge = AssessmentSource(source_type=AssessmentSourceType.LLM_JUDGE, source_id="gpt-4o-mini-judge")
    thumbs = mlflow.log_feedback(
        trace_id=trace_id, name="user_satisfaction", value=True, rationale="helpful", source=human
    )
    relevance = mlflow.log_feedback(
        trace_id=trace_id, name="relevance", value=0.6, source=judge, metadata={"judge_model": "gpt-4o-mini"}
    )
    rating = mlflow.log_feedback(trace_id=trace_id, name="rating", value=4, source=human)
    failed = mlflow.log_feedback(
        trace_id=trace_id,
        name="faithfulness",
        source=judge,
        error=AssessmentError(error_code="RATE_LIMIT_EXCEEDED", error_message="try later"),
    )
    retrieval_span = mlflow.get_trace(trace_id).data.spans[1].span_id
    on_span = mlflow.log_feedback(trace_id=trace_id, name="doc_relevance", value="relevant", span_id=retrieval_span)
    expected = mlflow.log_expectation(trace_id=trace_id, name="expected_facts", value={"facts": ["open source"]})

    assert mlflow.get_assessment(trace_id, thumbs.assessment_id).value is True
    assert mlflow.get_assessment(trace_id, rating.assessment_id).value == 4.0  # protobuf Value: a double
    assert mlflow.get_assessment(trace_id, failed.assessment_id).error.error_code == "RATE_LIMIT_EXCEEDED"
    assert mlflow.get_assessment(trace_id, on_span.assessment_id).span_id == retrieval_span
    assert mlflow.get_assessment(trace_id, expected.assessment_id).value == {"facts": ["open source"]}
    assert Assessment.objects.get(pk=on_span.assessment_id).source_type == "CODE"  # the client's default

    updated = mlflow.update_assessment(
        trace_id, thumbs.assessment_id, Feedback(name="user_satisfaction", value=False, rationale="Changed my mind")
    )
    assert (updated.value, updated.rationale, updated.source.source_id) == (False, "Changed my mind", "user_123")

    override = mlflow.override_feedback(
        trace_id=trace_id,
        assessment_id=relevance.assessment_id,
        value=0.9,
        rationale="Human reviewer: fully relevant",
        source=human,
    )
    assert override.overrides == relevance.assessment_id and override.name == "relevance"
    assessments = {a.assessment_id: a for a in mlflow.get_trace(trace_id).info.assessments}
    assert assessments[relevance.assessment_id].valid is False and assessments[override.assessment_id].valid is True

    mlflow.delete_assessment(trace_id, override.assessment_id)
    assert Assessment.objects.get(pk=relevance.assessment_id).valid is True
    mlflow.delete_assessment(trace_id, override.assessment_id)  # idempotent
    channels = set(Revision.objects.filter(trace_id=trace_id).values_list("channel", flat=True))
    assert channels == {"mlflow"}


def test_feedback_logged_inside_the_trace_rides_in_start_trace(mlflow, experiment):
    mlflow.set_experiment(experiment_id=str(experiment.pk))

    @mlflow.trace
    def checked():
        mlflow.log_feedback(trace_id=mlflow.get_active_trace_id(), name="inline_check", value="pass")
        return "ok"

    trace_id = run(mlflow, checked)
    [inline] = Assessment.objects.filter(trace_id=trace_id)
    assert (inline.name, inline.value) == ("inline_check", "pass")


def test_search_traces(mlflow, experiment):
    from mlflow.tracing.client import TracingClient

    mlflow.set_experiment(experiment_id=str(experiment.pk))
    app = traced_app(mlflow)
    ids = [run(mlflow, app, f"question {n}", f"user_{n}", "sess-1") for n in range(3)]
    mlflow.log_feedback(trace_id=ids[0], name="user_satisfaction", value=True)
    mlflow.log_feedback(trace_id=ids[1], name="user_satisfaction", value=False)
    mlflow.set_trace_tag(ids[2], "reviewed", "true")

    def found(**kwargs):
        traces = mlflow.search_traces(locations=[str(experiment.pk)], return_type="list", **kwargs)
        return [trace.info.trace_id for trace in traces]

    assert found() == ids[::-1]  # newest first
    assert found(filter_string="feedback.user_satisfaction = 'true'") == [ids[0]]
    assert found(filter_string="tags.reviewed = 'true' OR feedback.user_satisfaction = 'false'") == [ids[2], ids[1]]
    assert found(filter_string="metadata.`mlflow.trace.user` = 'user_1'") == [ids[1]]
    assert found(order_by=["timestamp_ms ASC"], max_results=2) == ids[:2]
    assert found(filter_string="span.type = 'RETRIEVER'", include_spans=True) == ids[::-1]
    with_spans = mlflow.search_traces(locations=[str(experiment.pk)], return_type="list")
    assert all(len(trace.data.spans) == 2 for trace in with_spans)

    client = TracingClient()
    page = client.search_traces(locations=[str(experiment.pk)], max_results=2, include_spans=False)
    assert [t.info.trace_id for t in page] == ids[:0:-1] and page.token
    rest = client.search_traces(
        locations=[str(experiment.pk)], max_results=2, page_token=page.token, include_spans=False
    )
    assert [t.info.trace_id for t in rest] == [ids[0]] and not rest.token


def test_bad_filters_raise_clear_errors(mlflow, experiment):
    from mlflow.exceptions import MlflowException

    mlflow.set_experiment(experiment_id=str(experiment.pk))
    for text, words in [("feedback.user_satisfaction = ", "Invalid filter"), ("assessments.x = 'y'", "Invalid filter")]:
        with pytest.raises(MlflowException, match=words) as caught:
            mlflow.search_traces(locations=[str(experiment.pk)], filter_string=text, return_type="list")
        assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException, match="Invalid identifier type 'feedback'"):
        mlflow.search_traces(locations=[str(experiment.pk)], order_by=["feedback.x DESC"], return_type="list")


def test_trace_tags(mlflow, experiment):
    mlflow.set_experiment(experiment_id=str(experiment.pk))
    trace_id = run(mlflow, traced_app(mlflow), "q", "u", "s")
    mlflow.set_trace_tag(trace_id, "reviewed", "true")
    assert mlflow.get_trace(trace_id).info.tags["reviewed"] == "true"
    mlflow.delete_trace_tag(trace_id, "reviewed")
    assert "reviewed" not in Trace.objects.get(pk=trace_id).tags


def test_openai_autolog(mlflow, experiment, fake_openai):
    import openai

    mlflow.set_experiment(experiment_id=str(experiment.pk))
    mlflow.openai.autolog()
    try:
        client = openai.OpenAI()
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "What is MLflow?"}]
        )
        trace_id = mlflow.get_last_active_trace_id()
        mlflow.flush_trace_async_logging()
    finally:
        mlflow.openai.autolog(disable=True)
    assert reply.choices[0].message.content.startswith("MLflow is")
    stored = Trace.objects.get(pk=trace_id)
    assert stored.name == "Completions" and stored.request_preview == "What is MLflow?"
    [span] = stored.spans.all()
    assert span.span_type == "CHAT_MODEL" and span.inputs["model"] == "gpt-4o-mini"
    assert span.outputs["choices"][0]["message"]["content"].startswith("MLflow is")
    trace = mlflow.get_trace(trace_id)
    assert trace.data.spans[0].span_type == "CHAT_MODEL"
    # The fake server's response carries usage {12, 9, 21}; gpt-4o-mini is in the price table.
    assert trace.info.token_usage == {"input_tokens": 12, "output_tokens": 9, "total_tokens": 21}
    assert trace.data.spans[0].get_attribute("mlflow.chat.tokenUsage")["total_tokens"] == 21
    assert stored.total_tokens == 21 and stored.cost == pytest.approx((12 * 0.15 + 9 * 0.6) / 1e6)


def test_token_usage_of_hand_instrumented_llm_spans(mlflow, experiment):
    mlflow.set_experiment(experiment_id=str(experiment.pk))

    @mlflow.trace(span_type="AGENT")
    def agent(question):
        for model, counts in (("gpt-4o", (100, 20)), ("claude-3-5-haiku-20241022", (50, 10))):
            with mlflow.start_span(f"call {model}", span_type="CHAT_MODEL") as span:
                span.set_inputs({"model": model, "messages": [{"role": "user", "content": question}]})
                span.set_outputs({"content": "ok"})
                span.set_attribute(
                    "mlflow.chat.tokenUsage",
                    {"input_tokens": counts[0], "output_tokens": counts[1], "total_tokens": sum(counts)},
                )
        return "ok"

    trace_id = run(mlflow, agent, "What is MLflow?")
    trace = mlflow.get_trace(trace_id)
    assert trace.info.token_usage == {"input_tokens": 150, "output_tokens": 30, "total_tokens": 180}
    stored = Trace.objects.get(pk=trace_id)
    assert stored.total_tokens == 180
    assert stored.cost == pytest.approx((100 * 2.5 + 20 * 10 + 50 * 0.8 + 10 * 4) / 1e6)
    by_name = {span.name: span for span in trace.data.spans}
    assert by_name["call gpt-4o"].get_attribute("mlflow.llm.model") == "gpt-4o"
    assert by_name["call gpt-4o"].get_attribute("mlflow.llm.cost")["total_cost"] == pytest.approx(450 / 1e6)


def test_token_usage_of_opentelemetry_genai_spans(mlflow, live, key, experiment):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider()
    exporter = OTLPSpanExporter(endpoint=f"{live}/v1/traces", headers={"Authorization": f"Bearer {key[1]}"})
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("agent", attributes={"gen_ai.operation.name": "invoke_agent"}) as root:
        with tracer.start_as_current_span(
            "chat gpt-4o-mini",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 30,
                "gen_ai.usage.output_tokens": 12,
            },
        ):
            pass
    provider.shutdown()
    trace_id = "tr-" + format(root.get_span_context().trace_id, "032x")
    trace = mlflow.get_trace(trace_id)
    assert trace.info.token_usage == {"input_tokens": 30, "output_tokens": 12, "total_tokens": 42}
    assert Trace.objects.get(pk=trace_id).cost == pytest.approx((30 * 0.15 + 12 * 0.6) / 1e6)
