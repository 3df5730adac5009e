"""manage.py generate_traces: realistic rows in every table, exactly as the services would write them
(COPY through two connections on PostgreSQL, executemany on SQLite)."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from assessments.models import Assessment, Revision
from traces.models import Experiment, Span, Trace

# transaction=True: on PostgreSQL the rows are written through separate connections,
# which must see the committed experiment (and are flushed after the test).
pytestmark = pytest.mark.django_db(transaction=True)


def generate(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("generate_traces", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_generates_traces_spans_feedback_and_revisions():
    out, err = generate(
        "--experiment",
        "bench",
        "--traces",
        "300",
        "--spans-per-trace",
        "4",
        "--feedback-per-trace",
        "6",
        "--seed",
        "7",
        "--chunk",
        "70",
    )
    experiment = Experiment.objects.get(name="bench")
    assert Trace.objects.filter(experiment=experiment).count() == 300
    assert Span.objects.count() == 1200
    assert "300 traces, 1,200 spans" in out and "rows/s" in out
    # progress bar with an ETA on stderr
    assert "ETA" in err and "300/300 traces" in err

    assessments = list(Assessment.objects.all())
    overrides = [a for a in assessments if a.overrides_id]
    assert len(assessments) == 300 * 6 + len(overrides)
    assert overrides, "some judge feedback is overridden by a human"
    # every value type, several names and sources
    value_types = {a.value_type for a in assessments}
    assert value_types == {"boolean", "number", "string", "list", "object", "error"}
    assert {a.name for a in assessments} == {
        "user_satisfaction",
        "relevance",
        "correctness",
        "tone",
        "topics",
        "details",
    }
    assert {a.source_type for a in assessments} == {"HUMAN", "LLM_JUDGE", "CODE"}
    assert {a.experiment_id for a in assessments} == {experiment.pk}
    for assessment in assessments:
        expected = float(assessment.value) if isinstance(assessment.value, (bool, int, float)) else None
        assert assessment.numeric_value == expected

    # the audit trail: one create revision per assessment, one override revision per override
    revisions = list(Revision.objects.all())
    assert len(revisions) == len(assessments)
    by_id = {r.assessment_id: r for r in revisions}
    for new in overrides:
        old = Assessment.objects.get(pk=new.overrides_id)
        assert (old.valid, old.version, new.valid, new.source_type, new.name) == (False, 2, True, "HUMAN", old.name)
        revision = by_id[new.pk]
        assert (revision.action, revision.related_assessment_id) == ("override", old.pk)
        assert revision.before == by_id[old.pk].after and revision.after["overrides"] == old.pk
    creates = [r for r in revisions if r.action == "create"]
    assert all(r.before is None and r.after["valid"] is True for r in creates)

    # trace fields as ingest_trace derives them
    trace = Trace.objects.get(pk=assessments[0].trace_id)
    assert trace.span_count == 4 and trace.session_id == trace.metadata["mlflow.trace.session"]
    assert trace.user_id == trace.metadata["mlflow.trace.user"] and trace.request_preview
    spans = list(trace.spans.order_by("start_time_ns"))
    assert spans[0].parent_span_id is None and {s.parent_span_id for s in spans[1:]} == {spans[0].span_id}
    assert spans[0].inputs == {"question": trace.request_preview}
    span_feedback = [a for a in assessments if a.span_id]
    assert span_feedback and all(
        Span.objects.filter(trace_id=a.trace_id, span_id=a.span_id).exists() for a in span_feedback[:20]
    )


def test_same_seed_gives_same_data_and_repeated_runs_add_to_the_experiment():
    generate(
        "--experiment",
        "a",
        "--traces",
        "20",
        "--spans-per-trace",
        "2",
        "--feedback-per-trace",
        "1",
        "--seed",
        "3",
        "--no-progress",
    )
    first = sorted(Trace.objects.values_list("trace_id", flat=True))
    generate(
        "--experiment", "a", "--traces", "20", "--spans-per-trace", "2", "--feedback-per-trace", "1", "--no-progress"
    )
    assert Trace.objects.count() == 40
    Trace.objects.exclude(pk__in=first).delete()
    Trace.objects.all().delete()
    generate(
        "--experiment",
        "b",
        "--traces",
        "20",
        "--spans-per-trace",
        "2",
        "--feedback-per-trace",
        "1",
        "--seed",
        "3",
        "--no-progress",
    )
    assert sorted(Trace.objects.values_list("trace_id", flat=True)) == first


def test_values_survive_as_json():
    generate(
        "--experiment",
        "j",
        "--traces",
        "30",
        "--spans-per-trace",
        "1",
        "--feedback-per-trace",
        "6",
        "--seed",
        "1",
        "--no-progress",
    )
    error = Assessment.objects.filter(error__isnull=False).first()
    details = Assessment.objects.filter(name="details").first()
    assert isinstance(details.value, dict) and set(details.value) == {"faithfulness", "citations"}
    if error is not None:
        assert error.value is None and error.error["error_code"] == "RATE_LIMIT_EXCEEDED"
    assert json.loads(json.dumps(Trace.objects.first().tags))["env"] in {"prod", "staging"}


@pytest.mark.parametrize(
    "args",
    [
        ["--traces", "-1"],
        ["--traces", "5", "--chunk", "0"],
        ["--traces", "5", "--spans-per-trace", "0", "--feedback-per-trace", "1"],
    ],
)
def test_bad_arguments_are_refused(args):
    with pytest.raises(CommandError):
        generate("--experiment", "x", *args)
    assert not Trace.objects.exists()
