"""The experiment feedback summary: on PostgreSQL read from the trigger-kept rollup, which must
agree with counting the rows after every kind of write."""

import pytest
from django.db import connection

from assessments import selectors, services
from tests.factories import SYSTEM, make_expectation, make_experiment, make_feedback, make_trace

pytestmark = pytest.mark.django_db


def summary_rows(experiment):
    return sorted(selectors._feedback_counts([experiment.pk]))


def test_summary_counts_valid_feedback_booleans_and_ups_after_every_kind_of_write():
    experiment, other = make_experiment(), make_experiment()
    first, second = make_trace(experiment), make_trace(experiment)
    make_feedback(first, value=True)
    make_feedback(second, value=True)
    down = make_feedback(first, value=False, name="helpful")
    make_feedback(first, name="score", value=1.0)  # a number, not a boolean
    make_feedback(first, name="score", value=0)
    make_feedback(first, name="label", value="good")
    make_feedback(first, name="broken", value=None, error={"error_code": "TIMEOUT"})
    make_expectation(first, name="user_satisfaction", value=True)  # not feedback
    make_feedback(make_trace(other), value=True)  # another experiment
    judged = make_feedback(second, name="helpful", value=True, source_type="LLM_JUDGE", source_id="judge")
    services.override_feedback(assessment=judged, actor=SYSTEM, channel="api", value=False)  # old one invalid
    services.update_assessment(assessment=down, actor=SYSTEM, channel="api", value=True)
    services.delete_assessment(assessment=make_feedback(second, name="label", value="bad"), actor=SYSTEM, channel="api")
    services.log_feedback_batch(
        items=[{"trace_id": second.trace_id, "name": "score", "value": 1}] * 2, actor=SYSTEM, channel="api"
    )

    assert summary_rows(experiment) == [
        (experiment.pk, "broken", 1, 0, 0),
        (experiment.pk, "helpful", 2, 2, 1),
        (experiment.pk, "label", 1, 0, 0),
        (experiment.pk, "score", 4, 0, 0),
        (experiment.pk, "user_satisfaction", 2, 2, 2),
    ]
    assert summary_rows(experiment) == sorted(selectors.counted_feedback([experiment.pk]))
    stats = selectors.feedback_stats_by_experiment([experiment, other])
    # the verdict is the experiment's setting (nobody gave one); other boolean series by name
    assert stats[experiment.pk]["feedback_count"] == 10
    assert stats[experiment.pk]["verdict"] == {"name": "reviewer_verdict", "rated": 0, "up_rate": None}
    assert [(s["name"], s["rated"], s["up_rate"]) for s in stats[experiment.pk]["series"]] == [
        ("helpful", 2, 0.5),
        ("user_satisfaction", 2, 1.0),
    ]
    assert stats[other.pk]["feedback_count"] == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the rollup is PostgreSQL's")
def test_rollup_folds_the_rows_of_gone_backends_without_changing_the_counts():
    experiment = make_experiment()
    make_feedback(make_trace(experiment), value=True)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO assessments_feedback_rollup VALUES (%s, 'user_satisfaction', -1, 2, 2, 1)", [experiment.pk]
        )
        assert summary_rows(experiment) == [(experiment.pk, "user_satisfaction", 3, 3, 2)]
        cursor.execute("SELECT assessments_feedback_rollup_compact()")
        cursor.execute("SELECT writer FROM assessments_feedback_rollup WHERE experiment_id = %s", [experiment.pk])
        assert -1 not in {writer for (writer,) in cursor.fetchall()}
    assert summary_rows(experiment) == [(experiment.pk, "user_satisfaction", 3, 3, 2)]
