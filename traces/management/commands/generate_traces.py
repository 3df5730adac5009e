"""Generate realistic synthetic traces, spans and feedback for benchmarks and demos.

    python manage.py generate_traces --experiment bench --traces 1000000 \\
        --spans-per-trace 3 --feedback-per-trace 2

This is the one writer that bypasses the services on purpose: it produces synthetic
data in bulk, where calling `ingest_trace` / `log_feedback` a million times would take
hours. It writes exactly the rows the services would (traces with their derived
fields, spans, assessments with the numeric projection and the denormalised
experiment id, one `create` revision per assessment and an `override` revision per
override, the overridden assessment marked invalid), so every page, filter and
aggregate reads it as it would read real data. On PostgreSQL the rows are streamed
with COPY (psycopg 3's `cursor.copy()`) through two connections, traces and spans on
one and their feedback on the other (committed after the traces), then VACUUM ANALYZE;
elsewhere they go through executemany, one transaction per chunk. An interrupted run
leaves whole traces behind (the last chunk's possibly without their feedback). Output
is deterministic for a given `--seed` (random by default, so repeated runs add data).
"""

from __future__ import annotations

import json
import queue
import random
import threading
import time
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from assessments.models import Assessment, Revision
from traces.access import Actor
from traces.models import Experiment, Span, Trace
from traces.services import create_experiment

QUESTIONS = [
    "How do I reset my password?",
    "What is MLflow Tracing?",
    "Can I export my data to CSV?",
    "Why was my card declined?",
    "How do I log feedback from the UI?",
    "What does error E1023 mean?",
    "Summarise the release notes for 3.2",
    "Which plan includes SSO?",
    "How do I rotate an API key?",
    "Is there an on-premise version?",
    "Translate 'good morning' into French",
    "What is the refund policy?",
    "How many requests per minute can I send?",
    "Compare the Pro and Team plans",
    "Where are my invoices?",
    "How do I delete my account?",
]
ANSWERS = [
    "Open Settings → Security and choose 'Reset password'; a link arrives by e-mail.",
    "Tracing records each step of a GenAI request (retrieval, LLM calls, tools) as spans.",
    "Yes: every table has an Export button that downloads a CSV file.",
    "The bank refused the charge; try another card or contact your bank.",
    "Open the trace, then use the Assessments panel to add a rating or a label.",
    "E1023 means the upstream model timed out; the request can be retried.",
    "3.2 adds batch feedback, faster search and a new trace timeline.",
    "SSO is part of the Team and Enterprise plans.",
    "Create a new key, deploy it, then revoke the old one in Settings → API keys.",
    "Yes, a self-hosted edition runs on any Linux machine with PostgreSQL.",
    "Bonjour.",
    "Refunds are possible within 30 days of purchase.",
]
STEPS = [
    ("retrieve_documents", "RETRIEVER"),
    ("rerank", "RERANKER"),
    ("chat_completion", "CHAT_MODEL"),
    ("search_web", "TOOL"),
    ("parse_answer", "PARSER"),
    ("embed_query", "EMBEDDING"),
    ("llm_call", "LLM"),
]
TRACE_NAMES = [("rag_pipeline", "CHAIN"), ("support_agent", "AGENT")]
TONES = ["friendly", "neutral", "curt", "rude"]
TOPICS = ["billing", "setup", "security", "export", "pricing", "errors"]
# Feedback names in the order a trace receives them: all value types, several sources.
FEEDBACK_KINDS = ["user_satisfaction", "relevance", "correctness", "tone", "topics", "details"]
OVERRIDE_RATE = 0.05
ERROR_RATE = 0.03


def _escape(text: str) -> str:
    """PostgreSQL COPY text format: backslash, tab, newline and carriage return escaped."""
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


_dumps = json.dumps  # the default arguments use the cached C encoder


class Progress:
    """A one-line progress bar with rate and ETA on stderr (silent when disabled)."""

    def __init__(self, total: int, enabled: bool, stream):
        self.total, self.enabled, self.stream = total, enabled, stream
        self.started = time.monotonic()
        self.last_draw = 0.0

    def update(self, done: int, rows: int, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self.last_draw < 0.5):
            return
        self.last_draw = now
        elapsed = max(now - self.started, 1e-9)
        fraction = done / self.total if self.total else 1.0
        eta = (elapsed / fraction - elapsed) if fraction > 0 else 0.0
        bar = "#" * int(fraction * 30)
        self.stream.write(
            f"\r[{bar:<30}] {fraction:6.1%} {done:,}/{self.total:,} traces  {rows / elapsed:,.0f} rows/s  "
            f"elapsed {timedelta(seconds=int(elapsed))}  ETA {timedelta(seconds=int(eta))} ",
            ending="",
        )
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.stream.write("")
            self.stream.flush()


class Generator:
    """Builds the rows of one chunk of traces as tuples in each table's column order."""

    TRACE_COLUMNS = [
        "trace_id",
        "experiment_id",
        "name",
        "request_time",
        "execution_time_ms",
        "state",
        "request_preview",
        "response_preview",
        "client_request_id",
        "tags",
        "metadata",
        "session_id",
        "user_id",
        "span_count",
        "created_at",
        "updated_at",
    ]
    SPAN_COLUMNS = [
        "trace_id",
        "span_id",
        "parent_span_id",
        "name",
        "span_type",
        "kind",
        "start_time_ns",
        "end_time_ns",
        "status_code",
        "status_message",
        "inputs",
        "outputs",
        "attributes",
        "events",
        "trace_request_time",
    ]
    ASSESSMENT_COLUMNS = [
        "assessment_id",
        "trace_id",
        "experiment_id",
        "span_id",
        "name",
        "kind",
        "value",
        "numeric_value",
        "error",
        "rationale",
        "source_type",
        "source_id",
        "metadata",
        "overrides_id",
        "valid",
        "version",
        "created_by_id",
        "created_by_key_id",
        "create_time",
        "last_update_time",
        "idempotency_key",
    ]
    REVISION_COLUMNS = [
        "assessment_id",
        "related_assessment_id",
        "trace_id",
        "experiment_id",
        "action",
        "channel",
        "actor_user_id",
        "actor_key_id",
        "actor_label",
        "created_at",
        "before",
        "after",
    ]

    def __init__(
        self, *, experiment_id: int, spans_per_trace: int, feedback_per_trace: int, seed: int, days: int, timestamp
    ):
        self.experiment_id = experiment_id
        self.spans_per_trace = spans_per_trace
        self.feedback_per_trace = feedback_per_trace
        self.random = random.Random(seed)
        self.timestamp = timestamp  # datetime → the value the database driver is given
        self.now = datetime.now(dt_timezone.utc)
        self.start = self.now - timedelta(days=days)
        self.span_seconds = days * 86400
        self.now_value = timestamp(self.now)
        self.id_clock = self.random.getrandbits(46)  # seeded: the same seed gives the same ids
        self.tags = [
            _dumps({"env": env, "app_version": f"1.{minor}"}) for env in ("prod", "staging") for minor in range(4)
        ]
        self.question_json = [_dumps({"question": q}) for q in QUESTIONS]
        self.answer_json = [_dumps(a) for a in ANSWERS]
        self.step_io = [
            (
                _dumps({"query": q[:40], "top_k": 5}),
                _dumps({"documents": [f"doc-{n}" for n in range(3)], "score": 0.82}),
            )
            for q in QUESTIONS
        ]
        self.attributes = [
            _dumps({"model": m, "temperature": 0.2}) for m in ("gpt-4o-mini", "llama-3.1-8b", "claude-3-haiku")
        ]

    def _id(self, prefix: str) -> str:
        """An id laid out as the services make them (traces.models.time_ordered_hex): a 48-bit
        counter (from a seeded start, ticking once per id) where they put the clock, then random
        bits. Ids that ascend within a run keep every index led by a trace or assessment id
        writing at one place instead of at random leaves."""
        self.id_clock += 1
        return "%s%012x%020x" % (prefix, self.id_clock, self.random.getrandbits(80))

    def chunk(self, count: int) -> tuple[list, list, list, list]:
        rnd = self.random
        getrandbits, rand, randrange = rnd.getrandbits, rnd.random, rnd.randrange
        traces, spans, assessments, revisions = [], [], [], []
        exp_id, spans_per_trace = self.experiment_id, self.spans_per_trace
        ts, now_value = self.timestamp, self.now_value
        for _ in range(count):
            trace_id = self._id("tr-")
            request_time = self.start + timedelta(seconds=rand() * self.span_seconds)
            start_ns = int(request_time.timestamp() * 1e9)
            duration_ms = 200 + int(rand() * rand() * 8000)
            error = rand() < 0.05
            q = randrange(len(QUESTIONS))
            a = randrange(len(ANSWERS))
            trace_name, root_type = TRACE_NAMES[q % 2]
            session = f"sess-{randrange(200_000):06d}"
            user = f"user-{randrange(20_000):05d}"
            trace_time = ts(request_time)
            traces.append(
                (
                    trace_id,
                    exp_id,
                    trace_name,
                    trace_time,
                    duration_ms,
                    "ERROR" if error else "OK",
                    QUESTIONS[q],
                    ANSWERS[a],
                    None,
                    self.tags[q % len(self.tags)],
                    f'{{"mlflow.trace.session": "{session}", "mlflow.trace.user": "{user}"}}',
                    session,
                    user,
                    spans_per_trace,
                    now_value,
                    now_value,
                )
            )
            base = getrandbits(48)
            root_span = "%012x0000" % base
            end_ns = start_ns + duration_ms * 1_000_000
            span_ids = [root_span]
            if spans_per_trace:
                spans.append(
                    (
                        trace_id,
                        root_span,
                        None,
                        trace_name,
                        root_type,
                        "SPAN_KIND_INTERNAL",
                        start_ns,
                        end_ns,
                        "ERROR" if error else "OK",
                        "upstream timeout" if error else "",
                        self.question_json[q],
                        self.answer_json[a],
                        '{"mlflow.spanType": "' + root_type + '"}',
                        "[]",
                        trace_time,
                    )
                )
                step = (end_ns - start_ns) // spans_per_trace
                for n in range(1, spans_per_trace):
                    name, span_type = STEPS[(q + n) % len(STEPS)]
                    span_id = "%012x%04x" % (base, n)
                    span_ids.append(span_id)
                    inputs, outputs = self.step_io[(q + n) % len(self.step_io)]
                    spans.append(
                        (
                            trace_id,
                            span_id,
                            root_span,
                            name,
                            span_type,
                            "SPAN_KIND_INTERNAL",
                            start_ns + n * step,
                            start_ns + (n + 1) * step,
                            "OK",
                            "",
                            inputs,
                            outputs,
                            self.attributes[n % len(self.attributes)],
                            "[]",
                            trace_time,
                        )
                    )
            created = request_time + timedelta(seconds=30 + rand() * 3600)
            for j in range(self.feedback_per_trace):
                self._feedback(j, trace_id, created + timedelta(seconds=j), span_ids, assessments, revisions)
        return traces, spans, assessments, revisions

    def _feedback(self, j: int, trace_id: str, when: datetime, span_ids: list, assessments: list, revisions: list):
        rnd = self.random
        rand = rnd.random
        name = FEEDBACK_KINDS[j % len(FEEDBACK_KINDS)]
        span_id = None
        error = None
        rationale = ""
        if name == "user_satisfaction":
            value, source_type, source_id = rand() < 0.65, "HUMAN", f"user-{rnd.randrange(20_000):05d}"
        elif name == "relevance":
            value, source_type, source_id = round(rand(), 3), "LLM_JUDGE", "gpt-4o-judge"
            rationale = "The answer addresses the question." if value > 0.5 else "The answer drifts off topic."
            if rand() < ERROR_RATE:
                value, error = None, {"error_code": "RATE_LIMIT_EXCEEDED", "error_message": "judge was rate limited"}
        elif name == "correctness":
            value, source_type, source_id = rnd.randint(1, 5), "HUMAN", f"reviewer-{rnd.randrange(20)}"
        elif name == "tone":
            value, source_type, source_id = rnd.choice(TONES), "LLM_JUDGE", "tone-classifier"
        elif name == "topics":
            value, source_type, source_id = rnd.sample(TOPICS, 2), "CODE", "topic_tagger_v2"
            span_id = span_ids[-1]
        else:
            value = {"faithfulness": round(rand(), 2), "citations": rnd.randrange(4)}
            source_type, source_id = "LLM_JUDGE", "ragas"
        overridden = source_type == "LLM_JUDGE" and error is None and rand() < OVERRIDE_RATE
        assessment_id = self._id("a-")
        self._assessment(
            assessment_id,
            trace_id,
            span_id,
            name,
            value,
            error,
            rationale,
            source_type,
            source_id,
            None,
            when,
            when + timedelta(hours=1) if overridden else when,
            not overridden,
            2 if overridden else 1,
            assessments,
            revisions,
        )
        if overridden:
            new_value = (
                round(1 - value, 3)
                if isinstance(value, float)
                else rnd.choice(TONES)
                if isinstance(value, str)
                else {**value, "faithfulness": 1.0}
            )
            self._assessment(
                self._id("a-"),
                trace_id,
                span_id,
                name,
                new_value,
                None,
                "Corrected by a reviewer.",
                "HUMAN",
                f"reviewer-{rnd.randrange(20)}",
                assessment_id,
                when + timedelta(hours=1),
                when + timedelta(hours=1),
                True,
                1,
                assessments,
                revisions,
            )

    def _assessment(
        self,
        assessment_id,
        trace_id,
        span_id,
        name,
        value,
        error,
        rationale,
        source_type,
        source_id,
        overrides,
        created,
        updated,
        valid,
        version,
        assessments,
        revisions,
    ):
        numeric = float(value) if isinstance(value, (bool, int, float)) else None
        value_json = _dumps(value) if value is not None else None
        error_json = _dumps(error) if error is not None else None
        assessments.append(
            (
                assessment_id,
                trace_id,
                self.experiment_id,
                span_id,
                name,
                "feedback",
                value_json,
                numeric,
                error_json,
                rationale,
                source_type,
                source_id,
                "{}",
                overrides,
                valid,
                version,
                None,
                None,
                self.timestamp(created),
                self.timestamp(updated),
                None,
            )
        )
        snapshot = {
            "name": name,
            "kind": "feedback",
            "value": value,
            "error": error,
            "rationale": rationale,
            "metadata": {},
            "source_type": source_type,
            "source_id": source_id,
            "span_id": span_id,
            "overrides": overrides,
            "valid": True,
            "version": 1,
        }
        before = None
        if overrides is not None:
            before = revisions[-1][-1]  # the overridden assessment's snapshot at creation
        revisions.append(
            (
                assessment_id,
                overrides,
                trace_id,
                self.experiment_id,
                "override" if overrides else "create",
                "api",
                None,
                None,
                f"end-user:{source_id}" if source_type == "HUMAN" else f"key:{source_id}",
                self.timestamp(created),
                before,
                _dumps(snapshot),
            )
        )


_COPY_TEXT = {
    str: _escape,
    int: str,
    float: repr,
    bool: lambda value: "t" if value else "f",
    type(None): lambda value: "\\N",
}


def _copy_text(rows: list[tuple]) -> str:
    """Rows in COPY's text format (tab-separated, \\N for NULL, one line each)."""
    convert = _COPY_TEXT
    return "".join(["\t".join([convert[type(value)](value) for value in row]) + "\n" for row in rows])


class Command(BaseCommand):
    help = "Generate synthetic traces, spans and feedback in bulk (COPY on PostgreSQL)."

    def add_arguments(self, parser):
        parser.add_argument("--experiment", required=True, help="Experiment name (created when missing).")
        parser.add_argument("--traces", type=int, required=True)
        parser.add_argument("--spans-per-trace", type=int, default=5)
        parser.add_argument("--feedback-per-trace", type=int, default=2)
        parser.add_argument(
            "--seed",
            type=int,
            default=None,
            help="Makes the output reproducible (ids included: the same seed twice in one database collides). "
            "Random by default.",
        )
        parser.add_argument("--days", type=int, default=30, help="Spread request times over this many past days.")
        parser.add_argument("--chunk", type=int, default=5000, help="Traces per transaction.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar (it goes to stderr).")
        parser.add_argument("--no-analyze", action="store_true", help="Skip VACUUM ANALYZE after loading (PostgreSQL).")

    def handle(self, *args, **options):
        traces, spans_per_trace = options["traces"], options["spans_per_trace"]
        feedback_per_trace, chunk = options["feedback_per_trace"], options["chunk"]
        if traces < 0 or spans_per_trace < 0 or feedback_per_trace < 0 or chunk < 1 or options["days"] < 1:
            raise CommandError("--traces, --spans-per-trace and --feedback-per-trace must be ≥ 0; --chunk, --days ≥ 1.")
        if feedback_per_trace and not spans_per_trace:
            raise CommandError("Feedback on span-less traces is not generated; use --spans-per-trace ≥ 1.")
        experiment = Experiment.objects.filter(name=options["experiment"]).first()
        if experiment is None:
            experiment = create_experiment(name=options["experiment"], actor=Actor.for_system("generate_traces"))
        postgres = connection.vendor == "postgresql"
        if postgres:
            timestamp = lambda value: value.isoformat()  # noqa: E731
        else:
            timestamp = connection.ops.adapt_datetimefield_value
        if options["seed"] is None:
            options["seed"] = random.SystemRandom().randrange(2**32)
        generator = Generator(
            experiment_id=experiment.pk,
            spans_per_trace=spans_per_trace,
            feedback_per_trace=feedback_per_trace,
            seed=options["seed"],
            days=options["days"],
            timestamp=timestamp,
        )
        tables = [
            (Trace._meta.db_table, Generator.TRACE_COLUMNS),
            (Span._meta.db_table, Generator.SPAN_COLUMNS),
            (Assessment._meta.db_table, Generator.ASSESSMENT_COLUMNS),
            (Revision._meta.db_table, Generator.REVISION_COLUMNS),
        ]
        progress = Progress(traces, enabled=not options["no_progress"], stream=self.stderr)
        started = time.monotonic()
        chunks = self._chunks(generator, traces, chunk)
        if postgres:
            counts = self._write_postgres(chunks, tables, progress)
        else:
            counts = self._write_inserts(chunks, tables, progress)
        progress.finish()
        elapsed = max(time.monotonic() - started, 1e-9)
        rows = sum(counts)
        self.stdout.write(
            f"experiment {experiment.pk} ({experiment.name}): {counts[0]:,} traces, {counts[1]:,} spans, "
            f"{counts[2]:,} assessments, {counts[3]:,} revisions = {rows:,} rows in {elapsed:.1f} s "
            f"({rows / elapsed:,.0f} rows/s, {'COPY' if postgres else 'INSERT'}, seed {options['seed']})"
        )
        if postgres and not options["no_analyze"]:
            # PostgreSQL's advice after a bulk load: fresh statistics for the planner, and a
            # visibility map so that index-only scans (experiment summaries) work at once.
            started = time.monotonic()
            with connection.cursor() as cursor:
                for table, _ in tables:
                    cursor.execute(f"VACUUM (ANALYZE) {table}")
            self.stdout.write(f"VACUUM ANALYZE took {time.monotonic() - started:.1f} s")

    @staticmethod
    def _chunks(generator: Generator, traces: int, chunk: int):
        done = 0
        while done < traces:
            size = min(chunk, traces - done)
            yield size, generator.chunk(size)
            done += size

    @staticmethod
    def _write_inserts(chunks, tables, progress: Progress) -> list[int]:
        counts = [0, 0, 0, 0]
        done = 0
        for size, chunk_rows in chunks:
            with transaction.atomic(), connection.cursor() as cursor:
                for index, ((table, columns), rows) in enumerate(zip(tables, chunk_rows)):
                    if rows:
                        placeholders = ", ".join(["%s"] * len(columns))
                        cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})", rows)
                    counts[index] += len(rows)
            done += size
            progress.update(done, sum(counts), force=done == progress.total)
        return counts

    @staticmethod
    def _write_postgres(chunks, tables, progress: Progress) -> list[int]:
        """COPY through two connections at once, so that PostgreSQL uses both cores.

        Connection A writes a chunk's traces and spans and commits; connection B writes
        its assessments and revisions meanwhile and commits once A has (their foreign
        keys are checked at commit and need the traces). The main thread formats the
        next chunk while both load. An interrupted run can leave the last chunk's
        traces without their feedback.
        """
        import psycopg

        params = connection.get_connection_params()
        errors: list[BaseException] = []
        counts = [0, 0, 0, 0]
        state = {"done": 0, "rows": 0}
        lock = threading.Lock()

        def worker(work: queue.Queue, table_pair):
            try:
                with psycopg.connect(**params) as conn:
                    while (job := work.get()) is not None:
                        size, chunk_total, texts, committed, wait_for = job
                        with conn.cursor() as cursor:
                            for (table, columns), text in zip(table_pair, texts):
                                if text:
                                    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                                        copy.write(text)
                        if wait_for is not None:
                            while not wait_for.wait(0.5):
                                if errors:
                                    raise RuntimeError("the other writer failed")
                        conn.commit()
                        committed.set()
                        if wait_for is not None:
                            with lock:
                                state["done"] += size
                                state["rows"] += chunk_total
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)
                while work.get() is not None:  # drain so the producer never blocks
                    pass

        queues = [queue.Queue(maxsize=2), queue.Queue(maxsize=2)]
        threads = [
            threading.Thread(target=worker, args=(queues[0], tables[:2]), daemon=True),
            threading.Thread(target=worker, args=(queues[1], tables[2:]), daemon=True),
        ]
        for thread in threads:
            thread.start()
        try:
            for size, chunk_rows in chunks:
                if errors:
                    break
                texts = [_copy_text(rows) for rows in chunk_rows]
                for index, rows in enumerate(chunk_rows):
                    counts[index] += len(rows)
                traces_committed, feedback_committed = threading.Event(), threading.Event()
                chunk_total = sum(len(rows) for rows in chunk_rows)
                queues[0].put((size, chunk_total, texts[:2], traces_committed, None))
                queues[1].put((size, chunk_total, texts[2:], feedback_committed, traces_committed))
                progress.update(state["done"], state["rows"])
        finally:
            for work in queues:
                work.put(None)
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.5)
                    progress.update(state["done"], state["rows"])
        if errors:
            raise CommandError(f"COPY failed: {errors[0]}") from errors[0]
        progress.update(state["done"], state["rows"], force=True)
        return counts
