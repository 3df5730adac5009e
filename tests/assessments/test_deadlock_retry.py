"""A create that PostgreSQL picks as a deadlock's victim runs again instead of answering 503;
other database errors, and a create inside an outer transaction, are not retried."""

import pytest
from django.db import transaction
from django.db.utils import OperationalError

from assessments import services
from assessments.models import Assessment
from assessments.services import verbs

from ..factories import SYSTEM, make_trace

pytestmark = pytest.mark.django_db(transaction=True)


class Deadlock(Exception):
    sqlstate = "40P01"


class Broken(Exception):
    sqlstate = "08006"


def failing_once(monkeypatch, cause):
    real, calls = verbs.validation.check_for_experiment, []

    def check_for_experiment(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("deadlock detected") from cause()
        return real(*args, **kwargs)

    monkeypatch.setattr(verbs.validation, "check_for_experiment", check_for_experiment)
    return calls


def create(trace):
    return services.create(kind="feedback", actor=SYSTEM, channel="api", name="correct", value=True, trace=trace)


def test_a_deadlock_victim_runs_again_and_writes_once(experiment, monkeypatch):
    trace = make_trace(experiment)
    calls = failing_once(monkeypatch, Deadlock)
    assert create(trace).assessment.name == "correct"
    assert len(calls) == 2 and Assessment.objects.filter(trace=trace).count() == 1


def test_other_database_errors_are_not_retried(experiment, monkeypatch):
    trace = make_trace(experiment)
    calls = failing_once(monkeypatch, Broken)
    with pytest.raises(OperationalError):
        create(trace)
    assert len(calls) == 1


def test_inside_an_outer_transaction_the_error_propagates(experiment, monkeypatch):
    trace = make_trace(experiment)
    calls = failing_once(monkeypatch, Deadlock)
    with pytest.raises(OperationalError), transaction.atomic():
        create(trace)
    assert len(calls) == 1
