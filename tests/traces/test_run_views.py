"""The evaluation run pages: an experiment's runs, and one run's traces with their scores."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import make_expectation, make_feedback, make_trace
from traces.models import Run, RunTrace


@pytest.fixture
def run(experiment):
    return Run.objects.create(
        experiment=experiment,
        name="calm-heron-1",
        status="FINISHED",
        tags={"mlflow.runType": "genai_evaluate", "team": "search"},
        params={"model": "m1"},
        metrics=[{"key": "exact_match/mean", "value": 0.5, "timestamp": 1, "step": 0}],
    )


def evaluated(experiment, run, n):
    """n traces of the run (every other one only linked), each with two CODE scores and an expectation."""
    traces = []
    for index in range(n):
        metadata = {"mlflow.sourceRun": run.run_id} if index % 2 == 0 else {}
        trace = make_trace(experiment, metadata=metadata, request_preview=f'{{"question": "q{index}"}}')
        if not metadata:
            RunTrace.objects.create(run=run, trace=trace)
        make_feedback(trace, name="exact_match", value=index % 2 == 0, source_type="CODE", source_id="default")
        make_feedback(trace, name="word_count", value=3 + index, source_type="CODE", source_id="default")
        make_expectation(trace, name="expected_response", value="x")
        traces.append(trace)
    return traces


def test_run_page_lists_the_runs_traces_with_their_scores(client, reviewer, experiment, run):
    traces = evaluated(experiment, run, 3)
    make_trace(experiment)  # not in the run
    client.force_login(reviewer)
    response = client.get(f"/runs/{run.run_id}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "calm-heron-1" in html and "exact_match/mean" in html and "team" in html
    assert [row["trace"] for row in response.context["rows"]] == traces
    assert response.context["names"] == ["exact_match", "word_count"]
    assert [[[a.value for a in cell] for cell in row["cells"]] for row in response.context["rows"]] == [
        [[True], [3]],
        [[False], [4]],
        [[True], [5]],
    ]
    for trace in traces:
        assert trace.get_absolute_url() in html


def test_experiment_pages_link_to_the_runs(client, reviewer, experiment, run):
    client.force_login(reviewer)
    assert f"/experiments/{experiment.pk}/runs/" in client.get(f"/experiments/{experiment.pk}/traces/").content.decode()
    response = client.get(f"/experiments/{experiment.pk}/runs/")
    assert response.status_code == 200
    assert run.get_absolute_url() in response.content.decode() and "0.5" in response.content.decode()


def test_run_pages_are_404_for_outsiders_and_unknown_runs(client, outsider, reviewer, experiment, run):
    client.force_login(outsider)
    assert client.get(f"/runs/{run.run_id}/").status_code == 404
    assert client.get(f"/experiments/{experiment.pk}/runs/").status_code == 404
    client.force_login(reviewer)
    assert client.get("/runs/" + "0" * 32 + "/").status_code == 404
    assert client.get("/runs/nope/").status_code == 404
    client.logout()
    assert client.get(f"/runs/{run.run_id}/").status_code == 302


@pytest.mark.parametrize("page", ["run", "list"])
def test_run_pages_query_count_does_not_grow(client, reviewer, experiment, run, page):
    client.force_login(reviewer)
    url = f"/runs/{run.run_id}/" if page == "run" else f"/experiments/{experiment.pk}/runs/"
    evaluated(experiment, run, 1)
    with CaptureQueriesContext(connection) as one:
        assert client.get(url).status_code == 200
    evaluated(experiment, run, 5)
    for n in range(4):
        Run.objects.create(experiment=experiment, name=f"more-{n}")
    with CaptureQueriesContext(connection) as six:
        assert client.get(url).status_code == 200
    assert len(six) == len(one)
