"""The full mlflow 3.18 client's evaluation datasets against a live FeedbackHub:
create_dataset, merge_records (dicts and a Trace), get_dataset (by id and by name), to_df,
search_datasets, delete_records and delete_dataset (docs/mlflow-datasets.md)."""

import json
import textwrap

import pytest

from assessments.datasets.models import Dataset, DatasetRecord

from .test_full_mlflow_client import client_env, full_client, run  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.live]

SCRIPT = textwrap.dedent("""
    import json

    import mlflow
    from mlflow.genai import datasets

    experiment = mlflow.set_experiment("datasets-client")
    out = {"experiment_id": experiment.experiment_id}

    @mlflow.trace
    def answer(question):
        return "MLflow is a platform."

    answer("What is MLflow?")
    trace_id = mlflow.get_last_active_trace_id()
    mlflow.flush_trace_async_logging()
    mlflow.log_expectation(trace_id=trace_id, name="expected_answer", value="An open source platform.")

    ds = datasets.create_dataset(name="golden", experiment_id=experiment.experiment_id, tags={"team": "qa"})
    out["created"] = {"id": ds.dataset_id, "name": ds.name, "tags": ds.tags, "experiment_ids": ds.experiment_ids}
    ds.merge_records([
        {"inputs": {"question": "What is MLflow?"}, "expectations": {"expected_answer": "A platform"}, "tags": {"k": "v"}},
        {"inputs": {"question": "What is a span?"}, "expectations": {"expected_answer": "A step", "n": 3}},
    ])
    ds.merge_records([{"inputs": {"question": "What is MLflow?"}, "expectations": {"extra": True}}])
    ds.merge_records([mlflow.get_trace(trace_id)])
    ds.merge_records(mlflow.search_traces(filter_string="expectation.expected_answer IS NOT NULL"))
    current = datasets.create_dataset(name="in-current-experiment")
    out["current"] = current.experiment_ids
    try:
        datasets.create_dataset(name="golden")
    except Exception as exc:
        out["duplicate"] = getattr(exc, "error_code", str(exc))
    datasets.delete_dataset(dataset_id=current.dataset_id)

    got = datasets.get_dataset(dataset_id=ds.dataset_id)
    frame = got.to_df()
    out["rows"] = json.loads(frame[["inputs", "outputs", "expectations", "tags", "source_type", "dataset_record_id"]]
                             .to_json(orient="records"))
    out["schema"] = json.loads(got.schema)
    out["profile"] = json.loads(got.profile)
    out["by_name"] = datasets.get_dataset(name="golden").dataset_id
    out["search_experiment"] = [d.dataset_id for d in datasets.search_datasets(experiment_ids=experiment.experiment_id)]
    out["search_like"] = [d.name for d in datasets.search_datasets(filter_string="name LIKE 'gol%'", max_results=10,
                                                                    order_by=["name ASC"])]
    out["search_tag"] = [d.name for d in datasets.search_datasets(filter_string="tags.team = 'qa'")]
    out["search_none"] = [d.name for d in datasets.search_datasets(filter_string="tags.team = 'other'")]
    out["deleted"] = got.delete_records([out["rows"][0]["dataset_record_id"]])
    out["after_delete"] = len(datasets.get_dataset(dataset_id=ds.dataset_id).to_df())
    datasets.delete_dataset(dataset_id=ds.dataset_id)
    try:
        datasets.get_dataset(dataset_id=ds.dataset_id)
    except Exception as exc:
        out["gone"] = getattr(exc, "error_code", str(exc))
    out["trace_id"] = trace_id
    print("RESULT=" + json.dumps(out))
""")


def test_evaluation_datasets_with_the_real_client(client_env, experiment, tmp_path):  # noqa: F811
    stdout = run(SCRIPT, client_env, tmp_path)
    out = json.loads(stdout.strip().splitlines()[-1].removeprefix("RESULT="))
    assert out["created"]["name"] == "golden"
    assert out["created"]["tags"]["team"] == "qa"
    assert out["created"]["experiment_ids"] == [out["experiment_id"]]
    rows = sorted(out["rows"], key=lambda row: row["inputs"]["question"])  # one batch: no order among them
    assert len(rows) == 2
    merged = rows[0]
    assert merged["inputs"] == {"question": "What is MLflow?"}
    # merged three times by equal inputs: expectations key by key, the trace's output as outputs
    assert merged["expectations"] == {"expected_answer": "An open source platform.", "extra": True}
    assert merged["outputs"] == "MLflow is a platform."
    assert merged["tags"]["k"] == "v"
    assert rows[1]["expectations"] == {"expected_answer": "A step", "n": 3}
    assert rows[1]["outputs"] == {}
    assert out["schema"]["inputs"] == {"question": "string"}
    assert out["schema"]["expectations"]["n"] == "integer"
    assert out["profile"] == {"num_records": 2}
    assert out["by_name"] == out["created"]["id"]
    assert out["current"] == [out["experiment_id"]]
    assert out["duplicate"] == "RESOURCE_CONFLICT"
    assert out["search_experiment"] == [out["created"]["id"]]
    assert out["search_like"] == ["golden"]
    assert out["search_tag"] == ["golden"]
    assert out["search_none"] == []
    assert out["deleted"] == 1
    assert out["after_delete"] == 1
    assert out["gone"] == "RESOURCE_DOES_NOT_EXIST"
    assert not Dataset.objects.exists()
    assert not DatasetRecord.objects.exists()
