"""Agreement over 100,000 matched pairs with intervals, on PostgreSQL (issue 15's target: ≤ 1 s).

    .venv/bin/python bench/agreement.py                  # 100,000 traces, judge vs human
    .venv/bin/python bench/agreement.py --traces 20000 --runs 3
    .venv/bin/python bench/agreement.py --series score review_score    # some of them

Uses its own database (default postgres://postgres@127.0.0.1:5432/fh_agreement_bench,
BENCH_DATABASE_URL overrides), migrates it, and fills an `agreement-bench` experiment once:
traces from `manage.py generate_traces` (one span, no feedback), then per trace a judge
(`judge-v1`, LLM_JUDGE) and a human (`alice`, HUMAN) under three names: `correct` (boolean, the
human agreeing 85% of the time), `rating` (integers 1–5, an ordinal definition) and `score`
(numbers with two decimals). For reviewer agreement, three reviewers (`alice`, `bob`, `carol`,
HUMAN) rate every other trace under two more names: `review_correct` (boolean, each reviewer
agreeing with the truth 85% of the time) and `review_score` (the truth plus the reviewer's noise,
two decimals): 50,000 items, 150,000 ratings per name. Those assessments are inserted by one SQL
statement per name and source (bench data, like generate_traces: no revisions). Data from
earlier runs is reused.

Measures the whole API call in process (Django test client: authentication, parsing, the
query, the statistics with 1,000 bootstrap resamples, JSON), median of --runs after a warm-up,
and the CPU time this process spent (on a busy machine the wall time is mostly waiting).
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/fh_agreement_bench"
EXPERIMENT = "agreement-bench"
PYTHON = sys.executable

# name → (value expression for the judge, for the human), from a per-trace hash h in [0, 1)
VALUES = {
    "correct": ("to_jsonb(h < 0.5)", "to_jsonb(CASE WHEN g < 0.85 THEN h < 0.5 ELSE h >= 0.5 END)"),
    "rating": (
        "to_jsonb(1 + floor(h * 5)::int)",
        "to_jsonb(LEAST(5, GREATEST(1, 1 + floor(h * 5)::int + CASE WHEN g < 0.7 THEN 0 WHEN g < 0.85 THEN 1 ELSE -1 END)))",
    ),
    "score": (
        "to_jsonb(round(h::numeric, 2))",
        "to_jsonb(round(LEAST(1, GREATEST(0, h + (g - 0.5) / 4))::numeric, 2))",
    ),
}
# name → a reviewer's value expression, from the same h and the reviewer's own hash g
REVIEWS = {
    "review_correct": "to_jsonb(CASE WHEN g < 0.85 THEN h < 0.5 ELSE h >= 0.5 END)",
    "review_score": "to_jsonb(round(LEAST(1, GREATEST(0, h + (g - 0.5) / 4))::numeric, 2))",
}
REVIEWERS = ("alice", "bob", "carol")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traces", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--series", nargs="+", choices=list(CASES), default=list(CASES), help="what to measure")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_DEBUG": "true"}
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    from ensure_database import ensure_database

    ensure_database(url)
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v0"], env=env, cwd=ROOT, check=True)
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "feedbackhub.settings")
    import django

    django.setup()
    from traces.models import Experiment, Trace

    experiment = Experiment.objects.filter(name=EXPERIMENT).first()
    have = Trace.objects.filter(experiment=experiment).count() if experiment else 0
    if have < args.traces:
        print(f"generating {args.traces - have:,} traces …", flush=True)
        subprocess.run(
            [PYTHON, "manage.py", "generate_traces", "--experiment", EXPERIMENT, "--traces", str(args.traces - have),
             "--spans-per-trace", "1", "--feedback-per-trace", "0", "--no-progress"],
            env=env, cwd=ROOT, check=True,
        )  # fmt: skip
        experiment = Experiment.objects.get(name=EXPERIMENT)
    fill(experiment)
    measure(experiment, args.runs, args.series)


def fill(experiment) -> None:
    """The judge's and the human's feedback on every trace that lacks them (one INSERT per side and name)."""
    from django.db import connection

    from assessments.definitions import services as definition_services
    from assessments.definitions.models import Definition
    from traces.access import Actor

    if not Definition.objects.filter(experiment=experiment, name="rating").exists():
        definition_services.create_definition(
            experiment=experiment, actor=Actor.for_system("bench"), name="rating", type="number", min=1, max=5,
            integer=True,
        )  # fmt: skip
    # (assessment id key, name, source type, source id, value, seed of g, which traces)
    inserts = [
        (f"{name}{side}", name, source_type, source_id, value, name, "TRUE")
        for name, (judge, human) in VALUES.items()
        for side, (source_type, source_id, value) in enumerate(
            (("LLM_JUDGE", "judge-v1", judge), ("HUMAN", "alice", human))
        )
    ]
    # reviewers rate the traces whose h2 (a third hash) is below one half, each with their own g
    inserts += [
        (f"{name}{reviewer}", name, "HUMAN", reviewer, value, f"{name}{reviewer}", "h2 < 0.5")
        for name, value in REVIEWS.items()
        for reviewer in REVIEWERS
    ]
    with connection.cursor() as cursor:
        for key, name, source_type, source_id, value, seed, where in inserts:
            started = time.perf_counter()
            cursor.execute(
                f"""
                INSERT INTO assessments_assessment (assessment_id, trace_id, experiment_id, name, kind, value,
                    numeric_value, rationale, source_type, source_id, metadata, valid, version, create_time,
                    last_update_time)
                SELECT 'a-' || md5(t.trace_id || %s), t.trace_id, t.experiment_id, %s, 'feedback', v.value,
                    CASE jsonb_typeof(v.value) WHEN 'boolean' THEN (v.value::text = 'true')::int
                         WHEN 'number' THEN (v.value::text)::float8 END,
                    '', %s, %s, '{{}}'::jsonb, true, 1, t.request_time, t.request_time
                FROM traces_trace t
                CROSS JOIN LATERAL (SELECT ('x' || substr(md5(t.trace_id), 1, 8))::bit(32)::bigint / 4294967296.0 AS h,
                                           ('x' || substr(md5(t.trace_id || %s), 1, 8))::bit(32)::bigint / 4294967296.0 AS g,
                                           ('x' || substr(md5(t.trace_id), 9, 8))::bit(32)::bigint / 4294967296.0 AS h2) r
                CROSS JOIN LATERAL (SELECT {value} AS value FROM (SELECT r.h AS h, r.g AS g) x) v
                WHERE t.experiment_id = %s AND {where}
                  AND NOT EXISTS (SELECT 1 FROM assessments_assessment a
                                  WHERE a.assessment_id = 'a-' || md5(t.trace_id || %s))
                """,
                [key, name, source_type, source_id, seed, experiment.pk, key],
            )
            if cursor.rowcount:
                print(f"  {name} {source_id}: {cursor.rowcount:,} rows in {time.perf_counter() - started:.1f} s")
        cursor.execute("ANALYZE assessments_assessment")


# series → (API path, query, the statistic shown)
CASES = {
    "correct": ("agreement", {"a": "correct", "a_source_type": "LLM_JUDGE", "b": "correct", "b_source_type": "HUMAN"},
                "cohen_kappa"),
    "rating": ("agreement", {"a": "rating", "a_source_type": "LLM_JUDGE", "b": "rating", "b_source_type": "HUMAN"},
               "weighted_kappa"),
    "score": ("agreement", {"a": "score", "a_source_type": "LLM_JUDGE", "b": "score", "b_source_type": "HUMAN"},
              "pearson"),
    "review_correct": ("reviewer-agreement", {"name": "review_correct"}, "krippendorff_alpha"),
    "review_score": ("reviewer-agreement", {"name": "review_score"}, "krippendorff_alpha"),
}  # fmt: skip


def measure(experiment, runs: int, series: list[str]) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client

    user = get_user_model().objects.filter(username="agreement-bench").first() or get_user_model().objects.create_user(
        "agreement-bench", password="x", is_staff=True
    )
    client = Client()
    client.force_login(user)
    print(f"{'series':<40} {'pairs':>8} {'median':>9} {'min':>8} {'max':>8} {'app CPU':>8}")
    for name in series:
        path, query, statistic = CASES[name]
        url = f"/api/v1/experiments/{experiment.pk}/{path}"
        response = client.get(url, query)  # warm-up (and the figures)
        assert response.status_code == 200, response.content[:500]
        data = response.json()
        times, cpu = [], []
        for _ in range(runs):
            started, started_cpu = time.perf_counter(), time.process_time()
            client.get(url, query)
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
        if path == "agreement":
            label, n = f"{name} ({data['type']}) judge vs human", data["n"]
        else:
            label, n = f"{name} ({data['level']}) {len(data['reviewers'])} reviewers", data["n_ratings"]
        print(
            f"{label:<40} {n:>8,} {statistics.median(times):>8.3f}s {min(times):>7.3f}s {max(times):>7.3f}s"
            f" {statistics.median(cpu):>7.3f}s"
            f"   {statistic} = {data[statistic]['value']:.3f} {data[statistic]['ci95']}"
        )
    load = os.getloadavg()[0]
    print(
        f"(load average {load:.1f} on {os.cpu_count()} cores; times include the HTTP handling in process;"
        " app CPU is this process's CPU time: the rest is PostgreSQL and waiting for a core;"
        " pairs: matched pairs, or ratings for reviewer agreement)"
    )


if __name__ == "__main__":
    main()
