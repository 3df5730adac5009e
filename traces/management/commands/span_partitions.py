"""`manage.py span_partitions`: create the span table's monthly partitions ahead (PostgreSQL).

For cron, e.g. daily:  5 0 * * *  cd /srv/feedbackhub && .venv/bin/python manage.py span_partitions

    manage.py span_partitions               this month and the next 2 (the default), and a month
                                            of its own for spans waiting in the default partition
    manage.py span_partitions --ahead 12    a year ahead
    manage.py span_partitions --list        what exists, with row estimates; change nothing

Spans of a trace whose month has no partition (an import of old traces, a cron that stopped)
are never refused: they wait in `traces_span_default`, and the next run moves them into a
partition of their own month. On SQLite (no partitions) it says so and does nothing.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import OperationalError
from django.utils import timezone

from traces import partitions


class Command(BaseCommand):
    help = "Create the span table's monthly partitions ahead (and for spans waiting in the default partition)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--ahead",
            type=int,
            default=2,
            help="Months after this one to create (default 2: every partition costs the planner a little "
            "on span filters, and a daily run keeps well ahead).",
        )
        parser.add_argument("--list", action="store_true", help="List the partitions; change nothing.")

    def handle(self, *args, **options):
        if not partitions.partitioned():
            self.stdout.write("Spans are not partitioned on this database (PostgreSQL only); nothing to do.")
            return
        if options["list"]:
            for month in partitions.months():
                self.stdout.write(f"{month.name}  {month}")
            waiting = partitions.months_in_default()
            self.stdout.write(f"{partitions.DEFAULT}  months waiting: {', '.join(map(str, waiting)) or 'none'}")
            return
        if not 0 <= options["ahead"] <= 120:
            raise CommandError("--ahead must be between 0 and 120 months.")
        try:
            created = partitions.ensure(now=timezone.now(), ahead=options["ahead"])
        except OperationalError as exc:
            raise CommandError(f"Could not lock the span table within {partitions.LOCK_TIMEOUT}: {exc}") from exc
        for month, moved in created:
            self.stdout.write(
                f"created {month.name}" + (f" (moved {moved:,} span(s) from the default)" if moved else "")
            )
        if not created:
            self.stdout.write("Every partition needed exists.")
