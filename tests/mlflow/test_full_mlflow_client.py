"""The full `mlflow==3.18.0` client (the version mlflow-protocol.md was recorded with), run in its
own virtualenv as a subprocess against the live server. Skipped unless .venv-mlflow exists
(`make mlflow-venv`; CI sets FEEDBACKHUB_REQUIRE_MLFLOW=1 so that it fails instead)."""

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest
from django.conf import settings

from assessments.models import Assessment, Revision
from traces.models import Trace

from ..factories import make_experiment
from .test_collect_feedback_example import EXAMPLE, assert_feedback_on_trace

PYTHON = Path(os.environ.get("FEEDBACKHUB_MLFLOW_VENV", settings.BASE_DIR / ".venv-mlflow")) / "bin" / "python"

pytestmark = [pytest.mark.live]


@pytest.fixture(autouse=True)
def full_client():
    """Skips without .venv-mlflow (`make mlflow-venv`), unless FEEDBACKHUB_REQUIRE_MLFLOW=1 (CI): then it fails."""
    if not PYTHON.exists():
        message = f"{PYTHON} not found; `make mlflow-venv` installs it"
        if os.environ.get("FEEDBACKHUB_REQUIRE_MLFLOW") == "1":
            pytest.fail(message + " and FEEDBACKHUB_REQUIRE_MLFLOW=1", pytrace=False)
        pytest.skip(message)


TOUR = textwrap.dedent("""
    import json
    import time

    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import AssessmentSource, AssessmentSourceType, Feedback

    assert mlflow.__version__ == "3.18.0", mlflow.__version__
    experiment = mlflow.set_experiment("full-client")
    out = {"experiment_id": experiment.experiment_id}

    @mlflow.trace
    def answer_question(question):
        mlflow.update_current_trace(tags={"env": "demo"})
        with mlflow.start_span("retrieve_docs", span_type="RETRIEVER") as span:
            span.set_inputs({"query": question})
            span.set_outputs(["doc"])
        return "MLflow is an open source platform."

    ids = []
    for n in range(3):
        answer_question(f"question {n}")
        ids.append(mlflow.get_last_active_trace_id())
        time.sleep(0.005)  # distinct request times (milliseconds): the order checks below need no tie-break
    human = AssessmentSource(source_type=AssessmentSourceType.HUMAN, source_id="user_123")
    thumbs = mlflow.log_feedback(trace_id=ids[0], name="user_satisfaction", value=True, source=human)
    judge = mlflow.log_feedback(trace_id=ids[1], name="relevance", value=0.6,
                                source=AssessmentSource(source_type="LLM_JUDGE", source_id="judge"))
    mlflow.log_expectation(trace_id=ids[0], name="expected_answer", value="A platform.")
    mlflow.flush_trace_async_logging()

    out["get_assessment"] = mlflow.get_assessment(ids[0], thumbs.assessment_id).value
    out["update"] = mlflow.update_assessment(ids[0], thumbs.assessment_id,
                                             Feedback(name="user_satisfaction", value=False)).value
    override = mlflow.override_feedback(trace_id=ids[1], assessment_id=judge.assessment_id, value=0.9, source=human)
    out["override_of"] = override.overrides
    trace = mlflow.get_trace(ids[1])
    out["valid"] = {a.assessment_id: a.valid for a in trace.info.assessments}
    out["spans"] = [s.name for s in trace.data.spans]
    mlflow.delete_assessment(ids[1], override.assessment_id)

    frame = mlflow.search_traces(filter_string="feedback.relevance > 0.5")  # pandas, with spans
    out["pandas"] = [row for row in frame["trace_id"]]
    out["list"] = [t.info.trace_id for t in mlflow.search_traces(order_by=["timestamp_ms ASC"], return_type="list")]
    client = MlflowClient()
    page = client.search_traces(locations=[experiment.experiment_id], max_results=2)
    rest = client.search_traces(locations=[experiment.experiment_id], max_results=2, page_token=page.token)
    out["pages"] = [[t.info.trace_id for t in page], [t.info.trace_id for t in rest], rest.token]
    client.set_trace_tag(ids[2], "reviewed", "true")
    out["tag"] = client.get_trace(ids[2]).info.tags.get("reviewed")
    client.delete_trace_tag(ids[2], "reviewed")
    out["ids"] = ids
    print("RESULT=" + json.dumps(out))
""")


def run(script: str, env: dict, tmp_path) -> str:
    path = tmp_path / "script.py"
    path.write_text(script)
    result = subprocess.run([str(PYTHON), str(path)], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


@pytest.fixture
def client_env(live, key):
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "MLFLOW_TRACKING_URI": live,
        "MLFLOW_TRACKING_TOKEN": key[1],
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }


def test_collect_user_feedback_example_verbatim(client_env, experiment, fake_openai, tmp_path):
    """No set_experiment at all: MLflow's Default experiment ("0") is the key's experiment."""
    env = {**client_env, "OPENAI_BASE_URL": os.environ["OPENAI_BASE_URL"], "OPENAI_API_KEY": "sk-test"}
    for _ in range(3):
        trace_id = run(EXAMPLE, env, tmp_path).strip().splitlines()[-1].removeprefix("TRACE_ID=")
        assert_feedback_on_trace(trace_id, experiment)


def test_api_tour(client_env, tmp_path):
    stdout = run(TOUR, client_env, tmp_path)
    out = json.loads(stdout.strip().splitlines()[-1].removeprefix("RESULT="))
    ids = out["ids"]
    assert Trace.objects.filter(pk__in=ids, experiment_id=int(out["experiment_id"])).count() == 3
    assert out["get_assessment"] is True and out["update"] is False
    assert out["spans"] == ["answer_question", "retrieve_docs"]
    assert sorted(out["valid"].values()) == [False, True]
    assert out["pandas"] == [ids[1]] and out["list"] == ids
    assert out["pages"] == [[ids[2], ids[1]], [ids[0]], None]
    assert out["tag"] == "true" and "reviewed" not in Trace.objects.get(pk=ids[2]).tags
    assert {r.channel for r in Revision.objects.filter(trace_id__in=ids)} == {"mlflow"}
    assert Assessment.objects.get(trace_id=ids[1], name="relevance").valid is True  # override deleted


SET_EXPERIMENT = textwrap.dedent("""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        experiment = mlflow.set_experiment("secret")
    except MlflowException as exc:
        print("RESULT=" + exc.error_code)
    else:
        print("RESULT=" + repr(experiment))
    print("RESULT=" + mlflow.set_experiment("free-name").name)
""")


def test_set_experiment_on_a_name_the_key_cannot_use_raises(client_env, tmp_path):
    """Issue 11 item 3: set_experiment returned None for another key's experiment name."""
    make_experiment("secret")
    results = [line.removeprefix("RESULT=") for line in run(SET_EXPERIMENT, client_env, tmp_path).splitlines()]
    assert results[-2:] == ["PERMISSION_DENIED", "free-name"]
