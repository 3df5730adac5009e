"""MLflow's "Collect User Feedback" example, run as written: OpenAI autolog, ask a question, then
`mlflow.log_feedback` right away (no flush, no sleep). The client exports the trace in the
background, so the feedback usually reaches FeedbackHub first; it must end up on the trace.
"""

import os
import subprocess
import sys
import textwrap

import pytest

from assessments.models import Assessment, PendingAssessment
from traces.models import Trace

pytestmark = pytest.mark.live

# The docs' example, verbatim apart from the question (the app talks to whatever
# OPENAI_BASE_URL names; the tests point it at a fake server on loopback).
EXAMPLE = textwrap.dedent('''
    import mlflow
    from mlflow.entities import AssessmentSource, AssessmentSourceType
    import openai

    # Enable automatic tracing for OpenAI calls
    mlflow.openai.autolog()

    # Initialize your LLM client
    client = openai.OpenAI()


    def ask_question(question):
        """Simple Q&A application with automatic tracing."""
        # This call is automatically traced by MLflow
        response = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {
                    "role": "system",
                    "content": "You are a helpful assistant. Answer questions clearly and concisely.",
                },
                {"role": "user", "content": question},
            ],
            temperature=0.7,
        )

        answer = response.choices[0].message.content
        return answer


    def collect_thumbs_feedback(trace_id, is_helpful, user_id):
        """Collect simple thumbs up/down feedback from users."""
        mlflow.log_feedback(
            trace_id=trace_id,
            name="user_satisfaction",
            value=is_helpful,
            rationale="User indicated response was helpful" if is_helpful else "User indicated response was not helpful",
            source=AssessmentSource(source_type=AssessmentSourceType.HUMAN, source_id=user_id),
        )


    question = "What is machine learning?"
    answer = ask_question(question)
    print(f"Question: {question}")
    print(f"Answer: {answer}")

    trace_id = mlflow.get_last_active_trace_id()
    collect_thumbs_feedback(trace_id, True, "user_123")
    print(f"TRACE_ID={trace_id}")
''')


def assert_feedback_on_trace(trace_id, experiment):
    trace = Trace.objects.get(pk=trace_id)
    assert (trace.experiment, trace.name) == (experiment, "Completions")
    [feedback] = Assessment.objects.filter(trace=trace)
    assert (feedback.name, feedback.value, feedback.source_type, feedback.source_id) == (
        "user_satisfaction",
        True,
        "HUMAN",
        "user_123",
    )
    assert feedback.rationale == "User indicated response was helpful"


# mlflow-tracing 3.17.2 cannot resolve MLflow's Default experiment ("name
# 'default_experiment_registry' is not defined": only the full mlflow package has it), so with
# the tracing SDK the app names its experiment first. The full mlflow 3.18 client runs the
# example untouched (test_full_mlflow_client.py): its Default experiment "0" is the key's experiment.
TRACING_SDK_SETUP = "import mlflow, os\nmlflow.set_experiment(experiment_id=os.environ['FH_EXPERIMENT_ID'])\n"


def test_example_in_process_three_times(mlflow, experiment, fake_openai, staff, client):
    mlflow.set_experiment(experiment_id=str(experiment.pk))
    trace_ids = []
    namespace = {}
    for _ in range(3):
        exec(compile(EXAMPLE.replace('print(f"TRACE_ID={trace_id}")', ""), "example.py", "exec"), namespace)
        trace_ids.append(namespace["trace_id"])
    namespace["mlflow"].openai.autolog(disable=True)
    # Verification only (not part of the example): let the background export finish.
    mlflow.flush_trace_async_logging()
    assert len(set(trace_ids)) == 3
    for trace_id in trace_ids:
        assert_feedback_on_trace(trace_id, experiment)
    assert not PendingAssessment.objects.exists()
    # ... and it shows on the trace page; feedback added there is visible to the client
    client.force_login(staff)
    page = client.get(f"/traces/{trace_ids[0]}/")
    assert page.status_code == 200 and b"user_satisfaction" in page.content
    from assessments import services
    from traces.access import Actor

    services.log_feedback(
        trace=Trace.objects.get(pk=trace_ids[0]),
        name="reviewer_ok",
        value=False,
        actor=Actor.for_user(staff),
        channel="ui",
        source_type="HUMAN",
        source_id="charlie",
    )
    names = {a.name for a in mlflow.get_trace(trace_ids[0]).info.assessments}
    assert names == {"user_satisfaction", "reviewer_ok"}


def test_example_as_a_script_three_times(live, key, experiment, fake_openai, tmp_path):
    """A user's own process: only the environment is set, the interpreter exits (and flushes) at the end."""
    script = tmp_path / "example.py"
    script.write_text(TRACING_SDK_SETUP + EXAMPLE)
    env = {
        **os.environ,
        "FH_EXPERIMENT_ID": str(experiment.pk),
        "MLFLOW_TRACKING_URI": live,
        "MLFLOW_TRACKING_TOKEN": key[1],
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "OPENAI_BASE_URL": os.environ["OPENAI_BASE_URL"],
        "OPENAI_API_KEY": "sk-test-not-a-real-key",
    }
    for _ in range(3):
        result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "Trace" not in result.stderr or "not found" not in result.stderr, result.stderr[-3000:]
        trace_id = result.stdout.strip().splitlines()[-1].removeprefix("TRACE_ID=")
        assert_feedback_on_trace(trace_id, experiment)
