"""Plain helpers that build rows for tests, always through the services."""

import itertools
import uuid

from assessments import services as assessment_services
from traces import services as trace_services
from traces.access import Actor
from traces.models import ApiKey, Experiment

SYSTEM = Actor.for_system("tests")
_counter = itertools.count()


def make_experiment(name=None, **extra) -> Experiment:
    return Experiment.objects.create(name=name or f"exp-{next(_counter)}-{uuid.uuid4().hex[:6]}", **extra)


def span_id(n: int) -> str:
    return f"{n + 1:016x}"


def make_spans(count: int, start_ns: int = 1_790_000_000_000_000_000) -> list[dict]:
    """A root span and `count - 1` children, each 1 ms apart."""
    spans = []
    for n in range(count):
        spans.append(
            {
                "span_id": span_id(n),
                "parent_span_id": None if n == 0 else span_id(0),
                "name": "root" if n == 0 else f"step_{n}",
                "span_type": "CHAIN" if n == 0 else ("LLM" if n % 2 else "RETRIEVER"),
                "start_time_ns": start_ns + n * 1_000_000,
                "end_time_ns": start_ns + (count + 1) * 1_000_000 if n == 0 else start_ns + (n + 1) * 1_000_000,
                "status_code": "OK",
                "inputs": {"question": "What is MLflow?"} if n == 0 else {"step": n},
                "outputs": "MLflow is an open source platform." if n == 0 else {"result": n},
                "attributes": {"n": n},
            }
        )
    return spans


def make_trace(experiment=None, spans=1, actor=SYSTEM, **fields):
    experiment = experiment or make_experiment()
    span_list = make_spans(spans) if isinstance(spans, int) else spans
    trace, _ = trace_services.ingest_trace(experiment=experiment, actor=actor, channel="api", spans=span_list, **fields)
    return trace


def make_feedback(trace, name="user_satisfaction", value=True, actor=SYSTEM, channel="api", **kwargs):
    kwargs.setdefault("source_type", "HUMAN")
    kwargs.setdefault("source_id", "user_123")
    return assessment_services.log_feedback(trace=trace, name=name, value=value, actor=actor, channel=channel, **kwargs)


def make_expectation(trace, name="expected_answer", value="MLflow is a platform.", actor=SYSTEM, **kwargs):
    return assessment_services.log_expectation(
        trace=trace, name=name, value=value, actor=actor, channel="api", **kwargs
    )


def make_api_key(*experiments, label="test key") -> tuple[ApiKey, str]:
    raw = ApiKey.generate()
    key = ApiKey.objects.create(label=label, prefix=raw[:10], key_hash=ApiKey.hash(raw))
    key.experiments.set(experiments)
    return key, raw
