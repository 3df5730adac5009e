"""`manage.py load_demo`: a RAG question-answering app's traces and feedback, a demo admin,
a reviewer and a demo API key. Idempotent: a second run changes nothing and prints the same key.

Everything is written through the services (ingest_trace, log_feedback, override_feedback, …),
exactly as the API, the MLflow protocol and the reviewer pages would write it. Trace ids, span
ids and every "random" choice come from fixed seeds, so two machines get the same demo.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from assessments import services
from assessments.agreement.demo import load_agreement_demo
from assessments.definitions.demo import define_demo
from assessments.demo.builders import (
    DEFAULT_DEMO_KEY,
    DEMO_EXPERIMENT,
    DEMO_KEY_LABEL,
    FAILURES,
    FOLLOW_UPS,
    JUDGE,
    MODEL,
    QA,
    QAS,
    SECOND_EXPERIMENT,
    TONES,
    USERS,
    TraceBuilder,
    agent_trace,
    chat_request,
    chat_response,
    rag_trace,
    stable_hex,
    token_usage,
    words,
)
from assessments.demo.dating import date_revisions_with_assessments
from assessments.insights.demo import add_insights_demo
from assessments.queues import services as queue_services
from assessments.queues.models import Queue
from traces import services as trace_services
from traces.access import Actor
from traces.models import ApiKey, Experiment, Membership


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
            for defined in (experiment, second):
                define_demo(defined, system)  # before any feedback, so the demo's carries its versions
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
        with transaction.atomic():  # a month of traffic with a release and a dip, for the insights page
            if added := add_insights_demo(experiment, cast.app):
                loaded.append(f"{added} insights traces into {experiment.name}")
        with transaction.atomic():  # a review queue of the end users' thumbs-down, with its rule
            if not Queue.objects.filter(experiment=experiment).exists():
                loaded.append(f"a review queue of {self._queue(experiment, system)} traces in {experiment.name}")
        self.stdout.write("Loaded " + "; ".join(loaded) + "." if loaded else "Demo data already loaded; nothing to do.")
        self.stdout.write(
            "\n  Demo logins:   admin / admin (staff) and reviewer / reviewer (reviewer of rag-demo)\n"
            f"  Demo API key:  {raw_key}  (experiment {DEMO_EXPERIMENT}, id {experiment.pk})\n"
        )

    # --- accounts and containers ---------------------------------------------------------------

    def _queue(self, experiment: Experiment, actor: Actor) -> int:
        """ "Thumbs-down triage": every trace an end user disliked, rated by two reviewers on the
        demo's rubric; its rule adds new thumbs-down as they arrive."""
        thumbs_down = "feedback.user_satisfaction = false"
        queue = queue_services.create_queue(
            experiment=experiment,
            actor=actor,
            name="Thumbs-down triage",
            instructions="An end user disliked each of these answers. Rate the answer and its tone; "
            "say in the rationale what went wrong.",
            questions=["rating", "tone"],
            answers_per_item=2,
            rule_filter=thumbs_down,
        )
        return queue_services.add_items(queue=queue, actor=actor, filter=thumbs_down, limit=200)["added"]

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
        date_revisions_with_assessments(experiment_id=experiment.pk)
        load_agreement_demo(experiment, traces, app=cast.app, reviewer=cast.reviewer, admin=cast.admin)
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
