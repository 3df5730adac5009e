"""Issue 17: the demo's revisions are dated with their assessments (the history no longer says
"created 11 min ago" under a card saying "18 h ago")."""

from datetime import timedelta

import pytest
from django.utils import timezone

from assessments import services
from assessments.demo.dating import date_revisions_with_assessments
from assessments.models import Revision

from ..factories import SYSTEM, make_feedback, make_trace

pytestmark = pytest.mark.django_db


def test_demo_revisions_move_back_to_their_assessments_time(experiment, other_experiment):
    then = timezone.now() - timedelta(hours=18)
    old = make_feedback(make_trace(experiment), create_time=then)
    edited = make_feedback(make_trace(experiment), create_time=then)
    services.update_assessment(assessment=edited, actor=SYSTEM, channel="api", value=False)
    elsewhere = make_feedback(make_trace(other_experiment), create_time=then)
    date_revisions_with_assessments(experiment_id=experiment.pk)
    assert Revision.objects.get(assessment_id=old.assessment_id).created_at == then
    create, update = Revision.objects.filter(assessment_id=edited.assessment_id).order_by("action")
    assert create.created_at == then and update.created_at > then  # the edit keeps its own time
    assert Revision.objects.get(assessment_id=elsewhere.assessment_id).created_at > then  # other experiments untouched
