"""`manage.py export`: an experiment's assessments or traces to a file (or stdout), with a progress bar.

    manage.py export --experiment rag-demo --what assessments --format parquet --output feedback.parquet
    manage.py export --experiment 3 --what traces --format jsonl --filter "feedback.user_satisfaction = false"

The same rows and formats as `GET /api/v1/experiments/{id}/export` (assessments.exports), read
through one server-side cursor, so memory stays flat for any size. The bar (on stderr) counts
rows against a COUNT taken first; `--verbosity 0` leaves it out.
"""

from __future__ import annotations

import sys
import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.http import Http404

from assessments.exports import writers
from assessments.exports.selectors import FORMATS, WHATS, count_rows, export_spec
from feedbackhub.errors import validation_message
from traces.access import Actor
from traces.services import experiment_for_ingest

BAR_WIDTH = 30
REDRAW_SECONDS = 0.2


class ProgressBar:
    """`[#####.....]  45%  450,000/1,000,000 rows  81,234 rows/s` redrawn in place on `stream`."""

    def __init__(self, total: int, stream):
        self.total, self.stream, self.done = total, stream, 0
        self.started = self.drawn = time.monotonic()

    def advance(self, rows: int) -> None:
        self.done += rows
        if time.monotonic() - self.drawn >= REDRAW_SECONDS:
            self.draw()

    def draw(self, end: str = "") -> None:
        self.drawn = time.monotonic()
        fraction = min(self.done / self.total, 1.0) if self.total else 1.0
        filled = int(fraction * BAR_WIDTH)
        rate = self.done / max(self.drawn - self.started, 1e-9)
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {fraction:4.0%}  "
            f"{self.done:,}/{self.total:,} rows  {rate:,.0f} rows/s{end}"
        )
        self.stream.flush()


class Command(BaseCommand):
    help = "Export an experiment's assessments or traces as JSONL, CSV or Parquet (streamed, with a progress bar)."

    def add_arguments(self, parser):
        parser.add_argument("--experiment", required=True, help="Experiment name or id.")
        parser.add_argument("--what", choices=WHATS, default="assessments")
        parser.add_argument("--format", choices=FORMATS, default="jsonl")
        parser.add_argument("--filter", default="", help="A filter in the trace list's language.")
        parser.add_argument("--start-time", default="", help="Traces from this time (epoch ms or ISO 8601).")
        parser.add_argument("--end-time", default="", help="Traces before this time (epoch ms or ISO 8601).")
        parser.add_argument("--output", "-o", default="-", help="File to write ('-': stdout, the default).")

    def handle(self, *args, **options):
        actor = Actor.for_system("export")
        try:
            experiment = experiment_for_ingest(actor, name=options["experiment"], field="--experiment")
        except Http404 as exc:
            raise CommandError(str(exc)) from None
        try:
            spec = export_spec(
                actor,
                experiment,
                what=options["what"],
                filter_text=options["filter"],
                start_time=options["start_time"],
                end_time=options["end_time"],
            )
        except ValidationError as exc:
            raise CommandError(validation_message(exc)) from None
        bar = ProgressBar(count_rows(spec), self.stderr) if options["verbosity"] > 0 else None
        out = sys.stdout.buffer if options["output"] == "-" else open(options["output"], "wb")  # noqa: SIM115
        try:
            for part in writers.stream(spec, options["format"], progress=bar.advance if bar else None):
                out.write(part)
        finally:
            if out is not sys.stdout.buffer:
                out.close()
            else:
                out.flush()
        if bar is not None:
            bar.draw(end="\n")
