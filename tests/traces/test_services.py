"""Trace ingestion: idempotent on trace_id, spans upserted in bulk, derived fields."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from traces import services
from traces.access import Actor
from traces.models import Span, Trace

from ..factories import make_spans, make_trace

pytestmark = pytest.mark.django_db

SYSTEM = Actor.for_system("tests")


def test_ingest_derives_trace_fields_from_root(experiment):
    trace = make_trace(experiment, spans=3)
    assert trace.name == "root" and trace.execution_time_ms == 4 and trace.state == "OK"
    assert trace.request_preview == '{"question": "What is MLflow?"}'
    assert trace.span_count == 3 and trace.trace_id.startswith("tr-")


def test_ingest_same_trace_twice_never_duplicates_spans(experiment):
    spans = make_spans(3)
    trace, created = services.ingest_trace(
        experiment=experiment, actor=SYSTEM, channel="api", spans=spans, tags={"a": "1"}
    )
    spans[1]["name"] = "renamed"
    again, created_again = services.ingest_trace(
        experiment=experiment, actor=SYSTEM, channel="api", trace_id=trace.trace_id, spans=spans, tags={"b": "2"}
    )
    assert created and not created_again
    assert Span.objects.filter(trace=trace).count() == 3
    assert Span.objects.get(trace=trace, span_id=spans[1]["span_id"]).name == "renamed"
    assert again.tags == {"a": "1", "b": "2"}


def test_partial_exports_accumulate(experiment):
    spans = make_spans(4)
    trace, _ = services.ingest_trace(experiment=experiment, actor=SYSTEM, channel="otlp", spans=spans[2:])
    services.ingest_trace(experiment=experiment, actor=SYSTEM, channel="otlp", trace_id=trace.pk, spans=spans[:2])
    trace.refresh_from_db()
    assert trace.span_count == 4 and trace.name == "root"


def test_trace_in_other_experiment_conflicts(experiment, other_experiment):
    trace = make_trace(experiment)
    with pytest.raises(services.Conflict):
        services.ingest_trace(experiment=other_experiment, actor=SYSTEM, channel="api", trace_id=trace.pk)


@pytest.mark.parametrize(
    "change, field",
    [
        ({"span_id": "XYZ"}, "spans[0].span_id"),
        ({"start_time_ns": -1}, "spans[0].start_time_ns"),
        ({"end_time_ns": 1}, "spans[0].end_time_ns"),
        ({"status_code": "BROKEN"}, "spans[0].status_code"),
    ],
)
def test_bad_spans_store_nothing(experiment, change, field):
    spans = make_spans(2)
    spans[0].update(change)
    with pytest.raises(ValidationError) as info:
        services.ingest_trace(experiment=experiment, actor=SYSTEM, channel="api", spans=spans)
    assert field in info.value.message_dict
    assert not Trace.objects.exists() and not Span.objects.exists()


def test_bad_trace_id(experiment):
    with pytest.raises(ValidationError):
        services.ingest_trace(experiment=experiment, actor=SYSTEM, channel="api", trace_id="tr-XYZ")


def test_viewer_cannot_ingest(experiment, viewer):
    with pytest.raises(PermissionDenied):
        services.ingest_trace(experiment=experiment, actor=Actor.for_user(viewer), channel="api")


def test_session_and_user_lifted_from_metadata(experiment):
    trace = make_trace(experiment, metadata={"mlflow.trace.session": "s1", "mlflow.trace.user": "u1"})
    assert (trace.session_id, trace.user_id) == ("s1", "u1")
