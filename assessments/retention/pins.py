"""Which traces a purge keeps whatever their age: the one place that decides it.

A pin is a function `pin(experiment) -> QuerySet | None`: a values/values_list queryset of one
column of trace ids (the experiment's traces it pins), or None when it pins nothing for this
experiment. PINS lists them by dotted path, so a feature adds its pin with one line and no
import between its app and this one.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.module_loading import import_string

from traces.models import Experiment, Trace

from ..models import Assessment

PINS = (
    "assessments.retention.pins.human_feedback",
    "assessments.datasets.selectors.pinned_trace_ids",  # dataset records, drafts and versions
    "assessments.queues.selectors.unfinished_item_trace_ids",  # open review work
)


def human_feedback(experiment: Experiment) -> QuerySet | None:
    """Traces with feedback from a human (reviewers and end users; overridden feedback too),
    when the experiment keeps human-reviewed traces (`retention_keep_human`)."""
    if not experiment.retention_keep_human:
        return None
    return Assessment.objects.filter(
        experiment_id=experiment.pk, kind=Assessment.Kind.FEEDBACK, source_type=Assessment.SourceType.HUMAN
    ).values("trace_id")


def pinned_trace_ids(experiment: Experiment) -> QuerySet:
    """The ids of the experiment's pinned traces: the union of every pin, as one subquery
    (`trace_id__in=`), read by the database, never loaded here. Taken through Trace's primary
    key so no NULL from a pin's column can reach a NOT IN."""
    # Unordered: SQLite refuses ORDER BY (a model's default ordering) inside a compound SELECT.
    pinned = [pin.order_by() for pin in (import_string(path)(experiment) for path in PINS) if pin is not None]
    if not pinned:
        return Trace.objects.none().values("pk")
    first, *rest = pinned
    union = first.union(*rest) if rest else first
    return Trace.objects.filter(experiment_id=experiment.pk, pk__in=union).values("pk")
