"""Insights scenarios of `make bench` (called from bench/run.py; also runnable alone):

    DATABASE_URL=postgres://…/fh_bench .venv/bin/python bench/insights.py [--runs 5]

- insights_page: the page for 30 days as a browser loads it, i.e. the shell plus its two
  panels (cards, trends), each one request; the sum of the three, in process (Django's test
  client, staff session), median of the runs.
- insights_metrics: `GET /api/v1/experiments/{id}/metrics?name=user_satisfaction&interval=day`
  (`--metric-name relevance`: a number name, medians value by value) over 30 days (whole hours: the hourly rollup), and MLflow's QueryTraceMetrics by name and hour.
- insights_late: a rating written now on a trace three weeks old; the time until the metrics
  call's bucket for that trace's day shows it.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

EXPERIMENT = "bench"


def _timed(call, runs: int) -> list[float]:
    call()  # warm
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def measure(experiment_id: int, staff, runs: int = 5, metric_name: str = "user_satisfaction") -> dict[str, dict]:
    """{scenario: {"median", "min", "max", "detail"}} in milliseconds."""
    import json

    from django.test import Client
    from django.utils import timezone

    from assessments import services
    from traces.access import Actor
    from traces.models import Trace

    client = Client()
    client.force_login(staff)
    base = f"/experiments/{experiment_id}/insights/"
    query = {"range": "30d"}

    def page():
        for url in (base, base + "panels/cards/", base + "panels/trends/"):
            response = client.get(url, query)
            assert response.status_code == 200, (url, response.status_code)

    parts = {}
    for label, url in (("shell", base), ("cards", base + "panels/cards/"), ("trends", base + "panels/trends/")):
        parts[label] = statistics.median(_timed(lambda url=url: client.get(url, query), runs))
    end = timezone.now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(days=30)
    metrics_url = f"/api/v1/experiments/{experiment_id}/metrics"
    params = {
        "name": metric_name,
        "interval": "day",
        "start_time": start.isoformat(),
        "end_time": end.isoformat(),
    }

    def metrics(name=metric_name):
        response = client.get(metrics_url, {**params, "name": name})
        assert response.status_code == 200, response.content[:300]
        return response.json()

    from traces.models import ApiKey

    raw = ApiKey.generate()
    key = ApiKey.objects.create(label="bench insights", prefix=raw[:10], key_hash=ApiKey.hash(raw))
    key.experiments.set([experiment_id])
    mlflow_body = json.dumps(
        {
            "experiment_ids": [str(experiment_id)],
            "view_type": "ASSESSMENTS",
            "metric_name": "assessment_value",
            "aggregations": [{"aggregation_type": "AVG"}],
            "dimensions": ["assessment_name"],
            "time_interval_seconds": 3600,
            "start_time_ms": int(start.timestamp() * 1000),
            "end_time_ms": int(end.timestamp() * 1000) - 1,
        }
    )

    def mlflow_metrics():
        response = client.post(
            "/api/3.0/mlflow/traces/metrics",
            mlflow_body,
            content_type="application/json",
            headers={"Authorization": f"Bearer {raw}"},
        )
        assert response.status_code == 200, response.content[:300]

    results = {
        "insights_page": _summary(_timed(page, runs), parts),
        "insights_metrics": _summary(_timed(metrics, runs), {}),
        "insights_mlflow_metrics": _summary(_timed(mlflow_metrics, runs), {}),
    }
    old = (
        Trace.objects.filter(experiment_id=experiment_id, request_time__lt=end - timedelta(days=21))
        .order_by("-request_time")
        .first()
    )
    late = []
    if old is not None:
        day = old.request_time.replace(hour=0, minute=0, second=0, microsecond=0)

        def count_for_day():
            return next(
                (
                    b["count"]
                    for b in metrics("user_satisfaction")["buckets"]
                    if b["start"].startswith(day.strftime("%Y-%m-%d"))
                ),
                0,
            )

        for _ in range(max(runs, 3)):
            before = count_for_day()
            started = time.perf_counter()
            services.log_feedback(
                trace=old,
                name="user_satisfaction",
                value=False,
                actor=Actor.for_system("bench"),
                channel="api",
                source_type="HUMAN",
                source_id="bench-late",
            )
            while count_for_day() == before and time.perf_counter() - started < 10:
                time.sleep(0.05)
            late.append((time.perf_counter() - started) * 1000)
    results["insights_late"] = _summary(late, {}) if late else {"error": "no trace three weeks old"}
    return results


def _summary(values: list[float], parts: dict) -> dict:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "detail": values,
        "parts_ms": parts,
    }


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--metric-name",
        default="user_satisfaction",
        help="the feedback name of the metrics API call (relevance: a number name, read value by value)",
    )
    args = parser.parse_args()
    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "feedbackhub.settings")
    os.environ.setdefault("DJANGO_DEBUG", "true")  # no collectstatic needed; bench/run.py runs with DEBUG off
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-insights-" + "x" * 40)
    os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,127.0.0.1")
    os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")
    os.environ.setdefault("FEEDBACKHUB_RATE_USER", "")
    os.environ.setdefault("FEEDBACKHUB_RATE_API_KEY", "")
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from traces.models import Experiment

    experiment = Experiment.objects.get(name=EXPERIMENT)
    staff, _ = get_user_model().objects.get_or_create(
        username="bench-staff", defaults={"is_staff": True, "is_superuser": True}
    )
    for name, result in measure(experiment.pk, staff, args.runs, args.metric_name).items():
        if "error" in result:
            print(f"{name}: {result['error']}")
            continue
        parts = ", ".join(f"{k} {v:.0f} ms" for k, v in result["parts_ms"].items())
        print(
            f"{name}: median {result['median']:.1f} ms (min {result['min']:.1f}, max {result['max']:.1f}){' — ' + parts if parts else ''}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
