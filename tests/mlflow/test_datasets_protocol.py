"""MLflow's dataset endpoints on the wire (shapes from docs/mlflow-datasets.md): JSON strings
inside JSON, epoch milliseconds, errors in MLflow's shape, never a 500 for client input."""

import json

import pytest

from assessments.datasets import services
from assessments.datasets.models import DatasetRecord

from ..factories import SYSTEM, make_api_key, make_experiment

pytestmark = pytest.mark.django_db
BASE = "/api/3.0/mlflow/datasets"


@pytest.fixture
def wire(client, api_key):
    def call(method, path, body=None):
        kwargs = {"HTTP_AUTHORIZATION": f"Bearer {api_key[1]}"}
        if body is not None:
            kwargs.update(data=json.dumps(body), content_type="application/json")
        return getattr(client, method)(f"{BASE}{path}", **kwargs)

    return call


def test_create_get_records_and_search(wire, experiment):
    created = wire("post", "/create", {"name": "golden", "experiment_ids": [str(experiment.pk)], "tags": '{"a": "b"}'})
    assert created.status_code == 200
    dataset = created.json()["dataset"]
    assert dataset["dataset_id"].startswith("d-") and json.loads(dataset["tags"]) == {"a": "b"}
    assert isinstance(dataset["created_time"], int) and dataset["experiment_ids"] == [str(experiment.pk)]
    dataset_id = dataset["dataset_id"]

    records = [{"inputs": {"q": str(n)}, "expectations": {"n": n}} for n in range(3)]
    upsert = wire("post", f"/{dataset_id}/records", {"records": json.dumps(records)})
    assert upsert.json() == {"inserted_count": 3, "updated_count": 0}
    page = wire("get", f"/{dataset_id}/records?max_results=2").json()
    assert len(json.loads(page["records"])) == 2 and page["next_page_token"]
    rest = wire("get", f"/{dataset_id}/records?max_results=2&page_token={page['next_page_token']}").json()
    listed = json.loads(rest["records"])
    assert len(listed) == 1 and "next_page_token" not in rest
    assert listed[0]["outputs"] == {} and listed[0]["dataset_record_id"].startswith("dr-")

    got = wire("get", f"/{dataset_id}").json()["dataset"]
    assert json.loads(got["profile"]) == {"num_records": 3}
    assert json.loads(got["schema"])["expectations"] == {"n": "integer"}
    assert wire("get", f"/{dataset_id}/experiment-ids").json() == {"experiment_ids": [str(experiment.pk)]}
    assert wire("patch", f"/{dataset_id}/tags", {"tags": '{"c": "d"}'}).status_code == 200
    assert wire("delete", f"/{dataset_id}/tags/a").status_code == 200
    found = wire("post", "/search", {"filter_string": "tags.c = 'd' AND name = \"golden\""}).json()
    assert [d["dataset_id"] for d in found["datasets"]] == [dataset_id]
    assert json.loads(found["datasets"][0]["tags"]) == {"c": "d"}


def test_client_mistakes_are_4xx_in_mlflow_shape(wire, experiment):
    def error(response, status, code):
        assert response.status_code == status, response.content
        assert response.json()["error_code"] == code

    error(wire("post", "/create", {"name": "x"}), 400, "INVALID_PARAMETER_VALUE")
    error(wire("post", "/create", {"name": "x", "experiment_ids": ["1", "2"]}), 400, "INVALID_PARAMETER_VALUE")
    error(wire("post", "/create", {"name": "x", "experiment_ids": ["999"]}), 404, "RESOURCE_DOES_NOT_EXIST")
    error(
        wire("post", "/create", {"name": "x", "experiment_ids": [str(experiment.pk)], "tags": "{"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    dataset = services.create_dataset(experiment=experiment, actor=SYSTEM, name="golden")
    error(wire("post", "/create", {"name": "golden", "experiment_ids": [str(experiment.pk)]}), 409, "RESOURCE_CONFLICT")
    error(wire("get", "/d-missing"), 404, "RESOURCE_DOES_NOT_EXIST")
    error(wire("post", f"/{dataset.pk}/records", {"records": '[{"expectations": {}}]'}), 400, "INVALID_PARAMETER_VALUE")
    error(wire("post", f"/{dataset.pk}/records", {"records": "not json"}), 400, "INVALID_PARAMETER_VALUE")
    error(wire("post", "/search", {"filter_string": "feedback.x = 1"}), 400, "INVALID_PARAMETER_VALUE")
    error(wire("post", "/search", {"order_by": ["size DESC"]}), 400, "INVALID_PARAMETER_VALUE")
    error(wire("get", f"/{dataset.pk}/records?page_token=zzz"), 400, "INVALID_PARAMETER_VALUE")
    assert not DatasetRecord.objects.exists()


def test_other_experiments_datasets_are_invisible(client, experiment):
    services.create_dataset(experiment=experiment, actor=SYSTEM, name="golden")
    other_key = make_api_key(make_experiment())[1]
    found = client.post(
        f"{BASE}/search", data="{}", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {other_key}"
    )
    assert found.json()["datasets"] == []
