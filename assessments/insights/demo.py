"""Demo data for the insights page: a month of traffic with a release eight days ago after which
satisfaction dips (mostly on deployment questions, where the new reranking step misfires), a
judge and two reviewers who mostly agree on `rating`, and feedback on every defined type.

Called once from `manage.py load_demo` (idempotent: nothing is added when the traces exist).
Everything is written through the services; every "random" choice comes from a fixed seed.
"""

from __future__ import annotations

import random
from datetime import timedelta

from django.utils import timezone

from assessments import services
from traces import services as trace_services
from traces.access import Actor
from traces.models import Experiment, Trace

from ..demo.builders import stable_hex

PER_DAY = 6
DAYS = 30
RELEASE_DAYS_AGO = 8
TOPICS = {"tracing": 0.0, "evaluation": 0.05, "deployment": 0.35}
QUESTIONS = {
    "tracing": "How do I trace a LangChain app with MLflow?",
    "evaluation": "How do I evaluate answers with an LLM judge?",
    "deployment": "How do I deploy a model behind a REST endpoint?",
}
TONES = ("professional", "friendly", "concise", "too_technical")


def _spans(key: str, start_ns: int, topic: str, reranks: bool) -> list[dict]:
    ids = [stable_hex(key, "span", n, length=16) for n in range(4)]
    steps = [("vector_search", "RETRIEVER", 40), ("rerank_documents", "RERANKER", 120), ("chat", "CHAT_MODEL", 900)]
    if not reranks:
        steps.pop(1)
    spans, clock = [], start_ns + 1_000_000
    for index, (name, kind, ms) in enumerate(steps, start=1):
        spans.append(
            {
                "span_id": ids[index],
                "parent_span_id": ids[0],
                "name": name,
                "span_type": kind,
                "start_time_ns": clock,
                "end_time_ns": clock + ms * 1_000_000,
                "status_code": "OK",
                "inputs": {"query": QUESTIONS[topic]},
                "outputs": {"ok": True},
            }
        )
        clock += ms * 1_000_000
    root = {
        "span_id": ids[0],
        "parent_span_id": None,
        "name": "answer_question",
        "span_type": "CHAIN",
        "start_time_ns": start_ns,
        "end_time_ns": clock + 1_000_000,
        "status_code": "OK",
        "inputs": {"question": QUESTIONS[topic]},
        "outputs": "See the docs page for the steps.",
    }
    return [root, *spans]


def add_insights_demo(experiment: Experiment, app: Actor) -> int:
    """A month of rated traffic in `experiment` (written as the app's key); returns how many traces."""
    if Trace.objects.filter(experiment=experiment, client_request_id__startswith="insights-").exists():
        return 0
    rng = random.Random(15_2026)
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    release = now - timedelta(days=RELEASE_DAYS_AGO)
    count = 0
    for slot in range(DAYS * PER_DAY):
        start = now - timedelta(days=DAYS) + timedelta(hours=slot * 24 / PER_DAY + rng.uniform(0, 3))
        if start >= now:
            break
        topic = rng.choice(list(TOPICS))
        after = start >= release
        key = f"{experiment.name}-insights-{slot}"
        trace, _ = trace_services.ingest_trace(
            experiment=experiment,
            actor=app,
            channel="api",
            trace_id="tr-" + stable_hex(key, "trace", length=32),
            spans=_spans(key, int(start.timestamp() * 1e9), topic, reranks=after),
            client_request_id="insights-" + stable_hex(key, "request", length=12),
            tags={"environment": "production", "app_version": "1.5.0" if after else "1.4.2"},
            metadata={"topic": topic, "region": rng.choice(["eu-west-1", "us-east-1"])},
        )
        # The answer's true quality (1..5): lower after the release, most on deployment questions.
        drop = TOPICS[topic] if after else 0.0
        quality = max(1, min(5, round(rng.gauss(4.1 - 3 * drop - (0.3 if after else 0), 0.8))))

        def feedback(name, value, source_type, source_id, minutes=5):
            services.log_feedback(
                trace=trace,
                name=name,
                value=value,
                actor=app,
                channel="api",
                source_type=source_type,
                source_id=source_id,
                create_time=min(start + timedelta(minutes=minutes), timezone.now()),
            )

        if rng.random() < 0.7:
            feedback(
                "user_satisfaction",
                quality >= 4 if rng.random() < 0.9 else quality < 4,
                "HUMAN",
                f"user_{rng.randint(1, 40)}",
                2,
            )
        feedback(
            "relevance", round(min(1.0, max(0.0, quality / 5 + rng.gauss(0, 0.08))), 2), "LLM_JUDGE", "judge-v1", 1
        )
        feedback(
            "rating",
            max(1, min(5, quality + (rng.choice([-1, 1]) if rng.random() < 0.2 else 0))),
            "LLM_JUDGE",
            "judge-v1",
            1,
        )
        for reviewer in ("alice", "bob"):
            if rng.random() < 0.35:
                shift = rng.choice([-1, 1]) if rng.random() < 0.15 else 0
                feedback("rating", max(1, min(5, quality + shift)), "HUMAN", reviewer, 60 * 24)
        if rng.random() < 0.4:
            feedback(
                "tone",
                "too_technical" if quality <= 2 and rng.random() < 0.6 else rng.choice(TONES[:3]),
                "HUMAN",
                "alice",
                60,
            )
        count += 1
    return count
