"""How the read paths grow with an experiment's size: one markdown table.

    BENCH_DATABASE_URL=postgres://… .venv/bin/python bench/growth.py bench-10k bench-100k bench

For each named experiment (generate them first with `manage.py generate_traces`), times in
this process, with the production settings and the Django test client (no HTTP, no
concurrency; median of --repeat calls after one warm-up): the first page of
`feedback.user_satisfaction = false` through the API, the trace list page, a trace's API
detail, and the home page's feedback summary of the experiment.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("experiments", nargs="+")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    os.environ.update(
        {
            "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/fh_bench"),
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "testserver",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DJANGO_LOG_LEVEL": "WARNING",
            "FEEDBACKHUB_RATE_API_KEY": "",
            "FEEDBACKHUB_RATE_USER": "",
            "DJANGO_SETTINGS_MODULE": "feedbackhub.settings",
        }
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.test import Client

    from assessments import selectors
    from traces.access import Actor
    from traces.models import Experiment, Trace
    from traces.services import create_api_key

    system = Actor.for_system("growth")
    staff, _ = get_user_model().objects.get_or_create(username="bench-staff", defaults={"is_staff": True})
    page_client = Client()
    page_client.force_login(staff)

    def median_ms(call) -> float:
        call()
        timings = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            call()
            timings.append((time.perf_counter() - started) * 1000)
        return statistics.median(timings)

    print(
        "| experiment | traces | assessments | search `user_satisfaction = false`, first page | trace list page "
        "| `GET /api/v1/traces/{id}` | feedback summary |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in args.experiments:
        experiment = Experiment.objects.get(name=name)
        _, raw = create_api_key(experiments=[experiment], label="growth", actor=system)
        api = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
        trace_id = Trace.objects.filter(experiment=experiment).values_list("trace_id", flat=True).first()
        search = (
            f"/api/v1/traces?experiment_id={experiment.pk}"
            "&filter=feedback.user_satisfaction%20%3D%20false&max_results=100"
        )
        cells = [
            median_ms(lambda: api.get(search)),
            median_ms(lambda: page_client.get(f"/experiments/{experiment.pk}/traces/")),
            median_ms(lambda: api.get(f"/api/v1/traces/{trace_id}")),
            median_ms(lambda: selectors.feedback_stats_by_experiment([experiment.pk])),
        ]
        traces = Trace.objects.filter(experiment=experiment).count()
        stats = selectors.feedback_stats_by_experiment([experiment.pk]).get(experiment.pk, {})
        print(
            f"| {name} | {traces:,} | {stats.get('feedback_count', 0):,} valid feedback | "
            + " | ".join(f"{cell:.1f} ms" for cell in cells)
            + " |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
