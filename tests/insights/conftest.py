"""A small experiment with feedback of every type spread over the last days."""

from datetime import datetime, timedelta, timezone

import pytest

from assessments.definitions import services as definition_services
from traces.access import Actor

from ..factories import make_experiment, make_feedback, make_spans, make_trace

SYSTEM = Actor.for_system("tests")


def at(moment: datetime, name: str = "answer") -> list[dict]:
    spans = make_spans(3, start_ns=int(moment.timestamp() * 1e9))
    spans[1]["name"] = "retrieve_docs"
    spans[2]["name"] = "generate" if name == "answer" else "tool_call"
    return spans


@pytest.fixture
def now():
    return datetime.now(timezone.utc)


@pytest.fixture
def rated(db, now):
    """24 traces over the last 6 days; user_satisfaction (boolean, two raters on some),
    relevance (judge, 0..1), tone (category, no definition), helpfulness (defined 1..5)."""
    experiment = make_experiment("insights-exp")
    definition_services.create_definition(
        experiment=experiment, actor=SYSTEM, name="helpfulness", type="number", integer=True, min=1, max=5
    )
    traces = []
    for n in range(24):
        moment = now - timedelta(hours=6 * n + 1)
        trace = make_trace(
            experiment,
            spans=at(moment, "answer" if n % 3 else "tool"),
            tags={"env": "prod" if n % 2 else "staging", "release": "v2" if n < 8 else "v1"},
            metadata={"topic": ["billing", "setup", "api"][n % 3]},
        )
        traces.append(trace)
        if n % 5 != 4:
            make_feedback(trace, value=n % 4 != 0, source_id=f"user_{n}")
        if n % 6 == 0:
            make_feedback(trace, value=True, source_id="second-rater")
        make_feedback(
            trace,
            name="relevance",
            value=round(0.1 + (n % 10) * 0.09, 2),
            source_type="LLM_JUDGE",
            source_id="judge-v1",
        )
        if n % 2:
            make_feedback(trace, name="tone", value=["friendly", "neutral", "rude"][n % 3], source_id="bob")
        if n % 3 != 2:
            make_feedback(trace, name="helpfulness", value=1 + n % 5, source_id="alice")
    return experiment, traces
