"""Fixtures of the review-queue tests: an experiment with two definitions and a queue asking them."""

import pytest

from assessments.definitions import services as definition_services
from assessments.queues import services
from traces.access import Actor

from ..factories import make_trace

SYSTEM = Actor.for_system("tests")


def define(experiment):
    definition_services.create_definition(
        experiment=experiment,
        actor=SYSTEM,
        name="correct",
        type="boolean",
        description="Is the answer correct?",
    )
    definition_services.create_definition(
        experiment=experiment,
        actor=SYSTEM,
        name="helpfulness",
        type="number",
        min=1,
        max=5,
        integer=True,
        levels={"1": "Useless", "3": "Partly useful", "5": "Perfect"},
    )


@pytest.fixture
def defined(experiment):
    define(experiment)
    return experiment


@pytest.fixture
def traces(defined):
    return [make_trace(defined, spans=1, trace_id=f"tr-{n:032x}") for n in range(1, 6)]


@pytest.fixture
def queue(defined, traces):
    queue = services.create_queue(
        experiment=defined,
        actor=SYSTEM,
        name="Weekly review",
        instructions="Judge the answer, not the question.",
        questions=["correct", "helpfulness"],
        answers_per_item=2,
    )
    services.add_items(queue=queue, actor=SYSTEM, trace_ids=[t.trace_id for t in traces])
    return queue


GOOD = {"correct": True, "helpfulness": 4}
