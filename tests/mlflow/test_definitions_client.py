"""The real mlflow client against a live FeedbackHub with definitions: a value outside a
definition raises MlflowException (INVALID_PARAMETER_VALUE) naming the rule; nothing is stored."""

import pytest

from assessments.definitions import services
from assessments.models import Assessment
from traces.access import Actor

pytestmark = pytest.mark.live


def test_log_feedback_outside_a_definition_raises_with_the_rule(mlflow, experiment):
    from mlflow.exceptions import MlflowException

    services.create_definition(
        experiment=experiment, actor=Actor.for_system("test"), name="rating", type="number", min=1, max=5, integer=True
    )
    mlflow.set_experiment(experiment_id=str(experiment.pk))

    @mlflow.trace
    def answer(question: str) -> str:
        return "MLflow is open source."

    answer("What is MLflow?")
    trace_id = mlflow.get_last_active_trace_id()
    mlflow.flush_trace_async_logging()

    with pytest.raises(MlflowException) as caught:
        mlflow.log_feedback(trace_id=trace_id, name="rating", value=7)
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "rating (v1) expects an integer from 1 to 5; got 7" in caught.value.message
    assert not Assessment.objects.filter(name="rating").exists()

    stored = mlflow.log_feedback(trace_id=trace_id, name="rating", value=4)
    assert Assessment.objects.get(pk=stored.assessment_id).definition_version == 1
    with pytest.raises(MlflowException) as caught:
        mlflow.update_assessment(trace_id, stored.assessment_id, mlflow.entities.Feedback(name="rating", value=0))
    assert "rating (v1) expects an integer from 1 to 5; got 0" in caught.value.message
