"""`mlflow.genai.evaluate`, `mlflow traces evaluate`, `search_traces(run_id=…)` and trace deletion
(`MlflowClient.delete_traces`, `mlflow traces delete`) with the full `mlflow==3.18.0` client in
its own virtualenv, against the live server (docs/mlflow-runs.md). Skipped without .venv-mlflow
unless FEEDBACKHUB_REQUIRE_MLFLOW=1."""

import json
import os
import subprocess
import textwrap
import threading
from http.server import ThreadingHTTPServer

import pytest

from assessments.models import Assessment, Revision
from traces.models import Run, RunTrace, Trace, TraceDeletion

from .conftest import _FakeOpenAI
from .test_full_mlflow_client import PYTHON, full_client, run  # noqa: F401  (fixture)

pytestmark = [pytest.mark.live]

EVALUATE = textwrap.dedent("""
    import json
    import mlflow
    from mlflow.entities import Feedback
    from mlflow.genai.scorers import scorer

    mlflow.set_experiment("evaluation")

    @scorer
    def exact_match(outputs, expectations):
        return outputs == expectations["expected_response"]

    @scorer
    def is_short(outputs) -> Feedback:
        return Feedback(value=len(outputs) < 100, rationale="short enough")

    @scorer
    def word_count(outputs):
        return len(outputs.split())

    def predict_fn(question):
        return f"Answer to {question}"

    data = [
        {"inputs": {"question": f"q{n}"},
         "expectations": {"expected_response": f"Answer to q{n}" if n % 2 else "something else"}}
        for n in range(10)
    ]
    result = mlflow.genai.evaluate(data=data, predict_fn=predict_fn, scorers=[exact_match, is_short, word_count])
    traces = mlflow.search_traces(run_id=result.run_id, return_type="list")
    runs = mlflow.search_runs(filter_string="tags.mlflow.runType = 'genai_evaluate'", output_format="list")
    print("RESULT=" + json.dumps({
        "run_id": result.run_id,
        "metrics": result.metrics,
        "traces": sorted(t.info.trace_id for t in traces),
        "assessments": sum(len(t.info.assessments) for t in traces),
        "runs": [r.info.run_id for r in runs],
        "status": mlflow.get_run(result.run_id).info.status,
    }))
""")


def result_of(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1].removeprefix("RESULT="))


@pytest.fixture
def client_env(live, key):
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "MLFLOW_TRACKING_URI": live,
        "MLFLOW_TRACKING_TOKEN": key[1],
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }


class _FakeJudge(_FakeOpenAI):
    """An OpenAI-compatible chat endpoint that answers as MLflow's built-in judges expect."""

    answer = json.dumps({"result": "yes", "rationale": "The answer addresses the question."})


@pytest.fixture
def fake_judge():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeJudge)
    server.requests = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_genai_evaluate_with_three_custom_scorers(client_env, experiment, tmp_path, client, staff):
    """10 rows × 3 custom scorers: 10 traces in the run, 30 CODE feedback + 10 expectations on them,
    searchable, in each trace's panel and on the run's page."""
    out = result_of(run(EVALUATE, client_env, tmp_path))
    run_row = Run.objects.get(pk=out["run_id"])
    assert run_row.experiment.name == "evaluation" and run_row.status == "FINISHED" == out["status"]
    assert run_row.tags["mlflow.runType"] == "genai_evaluate"
    assert out["metrics"] == {"exact_match/mean": 0.5, "is_short/mean": 1.0, "word_count/mean": 3.0}
    assert {m["key"]: m["value"] for m in run_row.latest_metrics.values()} == out["metrics"]
    assert out["runs"] == [out["run_id"]]

    traces = Trace.objects.filter(experiment=run_row.experiment)
    assert sorted(traces.values_list("pk", flat=True)) == out["traces"] and len(out["traces"]) == 10
    assert {trace.metadata["mlflow.sourceRun"] for trace in traces} == {out["run_id"]}
    feedback = Assessment.objects.filter(trace__in=traces, kind="feedback")
    assert feedback.count() == 30 and out["assessments"] == 40
    assert {(a.name, a.source_type) for a in feedback} == {
        ("exact_match", "CODE"),
        ("is_short", "CODE"),
        ("word_count", "CODE"),
    }
    assert feedback.filter(name="exact_match", value=True).count() == 5
    assert Assessment.objects.filter(trace__in=traces, kind="expectation").count() == 10
    assert {r.channel for r in Revision.objects.filter(trace_id__in=out["traces"])} == {"mlflow"}

    client.force_login(staff)
    panel = client.get(f"/traces/{out['traces'][0]}/").content.decode()
    assert all(name in panel for name in ("exact_match", "is_short", "word_count", "expected_response"))
    listed = client.get(f"/experiments/{run_row.experiment_id}/traces/?filter=feedback.exact_match+%3D+true")
    assert len(listed.context["rows"]) == 5
    page = client.get(f"/runs/{out['run_id']}/")
    assert len(page.context["rows"]) == 10 and page.context["names"] == ["exact_match", "is_short", "word_count"]


def test_builtin_judges_and_traces_evaluate_cli(client_env, experiment, fake_judge, tmp_path):
    """Built-in judges against a fake OpenAI endpoint give LLM_JUDGE feedback; `mlflow traces
    evaluate` scores existing traces and links them to its run, so search_traces(run_id=…) finds them."""
    env = {
        **client_env,
        "OPENAI_BASE_URL": f"http://127.0.0.1:{fake_judge.server_address[1]}/v1",
        "OPENAI_API_KEY": "sk-test-not-a-real-key",
    }
    script = textwrap.dedent("""
        import json
        import mlflow
        from mlflow.genai.scorers import RelevanceToQuery, Safety

        mlflow.set_experiment("judged")
        data = [{"inputs": {"question": f"q{n}"}, "outputs": f"Answer to q{n}"} for n in range(3)]
        result = mlflow.genai.evaluate(data=data, scorers=[Safety(model="openai:/gpt-4o-mini"),
                                                           RelevanceToQuery(model="openai:/gpt-4o-mini")])
        traces = mlflow.search_traces(run_id=result.run_id, return_type="list")
        print("RESULT=" + json.dumps({"run_id": result.run_id, "experiment_id": traces[0].info.experiment_id,
                                      "traces": [t.info.trace_id for t in traces]}))
    """)
    first = result_of(run(script, env, tmp_path))
    judged = Assessment.objects.filter(trace_id__in=first["traces"], kind="feedback")
    assert judged.count() == 6
    assert {(a.name, a.source_type, a.source_id, a.value) for a in judged} == {
        ("safety", "LLM_JUDGE", "openai:/gpt-4o-mini", "yes"),
        ("relevance_to_query", "LLM_JUDGE", "openai:/gpt-4o-mini", "yes"),
    }
    assert fake_judge.requests

    ids = ",".join(first["traces"][:2])
    cli = [str(PYTHON.parent / "mlflow"), "traces", "evaluate", "-x", first["experiment_id"]]
    result = subprocess.run(
        [*cli, "--trace-ids", ids, "--scorers", "Safety", "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    cli_run = Run.objects.exclude(pk=first["run_id"]).get(experiment_id=int(first["experiment_id"]))
    assert set(RunTrace.objects.filter(run=cli_run).values_list("trace_id", flat=True)) == set(first["traces"][:2])

    search = textwrap.dedent(f"""
        import json
        import mlflow
        traces = mlflow.search_traces(locations=["{first["experiment_id"]}"], run_id="{cli_run.run_id}",
                                      return_type="list")
        print("RESULT=" + json.dumps(sorted(t.info.trace_id for t in traces)))
    """)
    assert result_of(run(search, env, tmp_path)) == sorted(first["traces"][:2])


DELETE = textwrap.dedent("""
    import json
    import time
    import mlflow
    from mlflow import MlflowClient

    experiment = mlflow.set_experiment("to-clean")

    @mlflow.trace
    def answer(question):
        return "42"

    ids = []
    for n in range(5):
        answer(f"q{n}")
        ids.append(mlflow.get_last_active_trace_id())
        time.sleep(0.005)
    mlflow.flush_trace_async_logging()
    mlflow.log_feedback(trace_id=ids[0], name="ok", value=True)
    client = MlflowClient()
    deleted_ids = client.delete_traces(experiment.experiment_id, trace_ids=ids[:2] + ["tr-" + "0" * 32])
    deleted_old = client.delete_traces(experiment.experiment_id, max_timestamp_millis=int(time.time() * 1000),
                                       max_traces=1)
    left = [t.info.trace_id for t in mlflow.search_traces(return_type="list", include_spans=False)]
    print("RESULT=" + json.dumps({"experiment_id": experiment.experiment_id, "ids": ids,
                                  "deleted_ids": deleted_ids, "deleted_old": deleted_old, "left": left,
                                  "gone": mlflow.get_trace(ids[0]) is None}))
""")


def test_delete_traces_with_the_client_and_the_cli(client_env, experiment, tmp_path):
    out = result_of(run(DELETE, client_env, tmp_path))
    ids = out["ids"]
    assert out["deleted_ids"] == 2 and out["deleted_old"] == 1 and out["gone"] is True
    assert sorted(out["left"]) == sorted(ids[3:])  # the oldest remaining trace went first
    assert not Trace.objects.filter(pk__in=ids[:3]).exists()
    assert not Assessment.objects.filter(trace_id=ids[0]).exists()
    assert not Revision.objects.filter(trace_id=ids[0]).exists()
    audit = list(TraceDeletion.objects.order_by("created_at", "id"))
    assert [(a.trace_ids, a.channel, a.actor_label.startswith("key:")) for a in audit] == [
        (sorted(ids[:2]), "mlflow", True),
        ([ids[2]], "mlflow", True),
    ]
    assert audit[0].removed["assessments"] == 1 and audit[0].removed["revisions"] == 1

    cli = [str(PYTHON.parent / "mlflow"), "traces", "delete", "-x", out["experiment_id"]]
    result = subprocess.run([*cli, "--trace-ids", ids[3]], env=client_env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "Deleted 1 trace(s)" in result.stdout, result.stderr[-2000:]
    result = subprocess.run(
        [*cli, "--max-timestamp-millis", "1"], env=client_env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and "Deleted 0 trace(s)" in result.stdout, result.stderr[-2000:]
    assert list(Trace.objects.filter(experiment_id=int(out["experiment_id"])).values_list("pk", flat=True)) == [ids[4]]
