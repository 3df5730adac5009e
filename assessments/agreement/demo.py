"""Demo data for the agreement page: an LLM judge (`judge-v1`) and two human reviewers grade
the same answers, so judge-vs-human and reviewer agreement have something to show.

Called once by `manage.py load_demo` when it loads rag-demo's traces (inside its transaction);
written through the services like the rest of the demo. Seeded: every machine gets the same.
- `correct` (boolean, defined here): the judge on every answered trace, wrong on one in eight;
  the reviewer and the admin on two thirds of them, each slipping once or twice.
- `rating` (the 1–5 scale the reviewer already uses): the judge rates the same traces, mostly
  the reviewer's rating where there is one, mostly exactly, else near the answer's quality.
"""

from __future__ import annotations

import random
from datetime import timedelta

from django.utils import timezone

from traces.access import Actor
from traces.models import Experiment

from .. import services
from ..definitions import services as definition_services
from ..definitions.models import Definition
from ..models import Assessment

JUDGE_ID = "judge-v1"
NAME = "correct"
RATINGS = {"good": (4, 5), "weak": (2, 3), "bad": (1, 2)}


def load_agreement_demo(experiment: Experiment, traces: list, *, app: Actor, reviewer: Actor, admin: Actor) -> int:
    """Add the judge's and the reviewers' grades to `traces` ((trace, kind, qa, builder) as
    load_demo builds them); returns how many assessments it wrote."""
    if not Definition.objects.filter(experiment=experiment, name=NAME).exists():
        definition_services.create_definition(
            experiment=experiment,
            actor=Actor.for_system("load_demo"),
            name=NAME,
            type="boolean",
            description="Is the answer factually correct and complete? Graded by judge-v1 and by reviewers.",
        )
    rng = random.Random(1515)
    now = timezone.now()
    written = 0
    for number, (trace, kind, qa, _) in enumerate(traces):
        if kind == "fail":
            continue
        quality = qa.quality if qa else "good"
        # About half the answers are correct: good ones, except every fourth that misses a step.
        truth = quality == "good" and number % 4 != 0

        def grade(name, value, actor, source_type, source_id, minutes, rationale=""):
            services.log_feedback(
                trace=trace,
                name=name,
                value=value,
                actor=actor,
                channel="api" if source_type == "LLM_JUDGE" else "ui",
                source_type=source_type,
                source_id=source_id,
                rationale=rationale,
                create_time=min(trace.request_time + timedelta(minutes=minutes), now),
            )

        # The judge misses one answer in eight; the reviewers slip once or twice.
        judged = truth if number % 8 != 5 else not truth
        grade(NAME, judged, app, "LLM_JUDGE", JUDGE_ID, 2, _judge_rationale(judged, quality))
        written += 1
        grade("rating", _judge_rating(rng, trace, quality), app, "LLM_JUDGE", JUDGE_ID, 2)
        written += 1
        if number % 3 == 2:
            continue
        for actor, source_id, slips, minutes in (
            (reviewer, "reviewer", {10}, 60 * 21),
            (admin, "admin", {4, 22}, 60 * 27),
        ):
            verdict = truth if number not in slips else not truth
            grade(NAME, verdict, actor, "HUMAN", source_id, minutes)
            written += 1
    return written


def _judge_rating(rng: random.Random, trace, quality: str) -> int:
    """Mostly the reviewer's rating of the trace (when there is one), else near the quality."""
    rated = (
        Assessment.objects.filter(trace=trace, name="rating", source_id="reviewer", valid=True)
        .values_list("numeric_value", flat=True)
        .first()
    )
    if rated is None:
        return rng.choice(RATINGS[quality])
    draw = rng.random()
    if draw < 0.8:
        return int(rated)
    if draw < 0.95:
        return int(min(5, max(1, rated + rng.choice((-1, 1)))))
    return rng.randint(1, 5)


def _judge_rationale(judged: bool, quality: str) -> str:
    if judged:
        return "The answer states the documented behaviour and nothing contradicts the sources."
    if quality == "good":
        return "The answer omits a step the retrieved page mentions."
    return "The answer contradicts the retrieved documentation."
