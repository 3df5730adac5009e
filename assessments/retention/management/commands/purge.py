"""`manage.py purge`: delete traces older than their experiment's retention, except pinned ones.

For cron, e.g. nightly:  15 3 * * *  cd /srv/feedbackhub && .venv/bin/python manage.py purge

    manage.py purge                       every experiment with retention_days set
    manage.py purge --experiment rag-demo one experiment
    manage.py purge --dry-run             print what would go, change nothing

Each experiment is purged in small batches (one short transaction each) and leaves a PurgeRun
(admin, and the experiment's retention page). On PostgreSQL a purge of every experiment (no
--experiment) first drops whole months of spans whose every trace is due and unpinned
(traces/partitions.py), so the batches only delete the traces, feedback and history.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.http import Http404

from assessments.retention import services
from traces.access import Actor
from traces.services import experiment_for_ingest


class Command(BaseCommand):
    help = "Delete traces older than their experiment's retention_days (pinned traces stay); --dry-run prints what would go."

    def add_arguments(self, parser):
        parser.add_argument("--experiment", help="Only this experiment (name or id).")
        parser.add_argument(
            "--dry-run", action="store_true", help="Count and list what would be deleted; delete nothing."
        )
        parser.add_argument("--batch-size", type=int, default=services.BATCH_SIZE, help="Traces per transaction.")
        parser.add_argument("--pause", type=float, default=0.0, help="Seconds to sleep between batches.")

    def handle(self, *args, **options):
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        experiments = list(services.experiments_with_retention())
        if options["experiment"]:
            try:
                experiment = experiment_for_ingest(
                    Actor.for_system("purge"), name=options["experiment"], field="--experiment"
                )
            except Http404 as exc:
                raise CommandError(str(exc)) from None
            if experiment.retention_days is None:
                raise CommandError(f"Experiment {experiment.name!r} keeps its traces forever (no retention_days).")
            experiments = [experiment]
        if not experiments:
            self.stdout.write("No experiment has a retention; nothing to purge.")
            return
        batches = {"dry_run": options["dry_run"], "batch_size": options["batch_size"], "pause": options["pause"]}
        if options["experiment"]:
            self.report(services.purge_experiment(experiment=experiments[0], **batches), options["verbosity"])
            return
        outcome = services.purge_all(**batches)
        for drop in outcome.months:
            if drop.spans is None:
                self.stdout.write(f"spans of {drop.month}: would drop the whole month (partition {drop.month.name}).")
            else:
                self.stdout.write(f"spans of {drop.month}: dropped the whole month, {drop.spans:,} span(s).")
        for result in outcome.experiments:
            self.report(result, options["verbosity"])

    def report(self, result: services.PurgeResult, verbosity: int) -> None:
        experiment = result.experiment
        due = f"older than {result.cutoff:%Y-%m-%d %H:%M} UTC ({experiment.retention_days} days)"
        if result.dry_run:
            self.stdout.write(
                f"{experiment.name}: would delete {result.deleted:,} trace(s) {due}; "
                f"{result.kept_pinned:,} kept because pinned."
            )
            for trace_id in result.sample if verbosity > 0 else []:
                self.stdout.write(f"  {trace_id}")
            if result.deleted > len(result.sample) and verbosity > 0:
                self.stdout.write(f"  … and {result.deleted - len(result.sample):,} more")
        else:
            self.stdout.write(
                f"{experiment.name}: deleted {result.deleted:,} trace(s) {due} in {result.batches} batch(es); "
                f"{result.kept_pinned:,} kept because pinned."
            )
