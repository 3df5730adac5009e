"""The native dataset API: create and list, add records (ids, filter), edit and remove,
publish (201 {"version": n}), export a version as JSONL and CSV, diff; access rules."""

import csv
import io
import json

import pytest
from rest_framework.test import APIClient

from assessments.datasets import services
from assessments.datasets.models import DatasetRecord

from ..factories import SYSTEM, make_api_key, make_expectation, make_experiment, make_feedback, make_trace

pytestmark = pytest.mark.django_db


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


@pytest.fixture
def traces(experiment):
    traces = [make_trace(experiment) for _ in range(3)]
    make_expectation(traces[0], value="A platform.")
    make_expectation(traces[1], value="Another.")
    make_feedback(traces[1], value=False)
    return traces


def test_the_whole_flow(api_client, experiment, traces):
    created = api_client.post(f"/api/v1/experiments/{experiment.pk}/datasets", {"name": "golden"})
    assert created.status_code == 201, created.content
    dataset_id = created.json()["dataset_id"]
    assert api_client.get(f"/api/v1/experiments/{experiment.pk}/datasets").json()[0]["dataset_id"] == dataset_id

    added = api_client.post(f"/api/v1/datasets/{dataset_id}/records", {"trace_ids": [traces[0].trace_id]})
    assert added.status_code == 201 and added.json()["added"] == 1
    by_filter = api_client.post(
        f"/api/v1/datasets/{dataset_id}/records",
        {"filter": "expectation.expected_answer IS NOT NULL AND feedback.user_satisfaction = false", "limit": 5},
    )
    assert by_filter.status_code == 201 and by_filter.json()["records"][0]["source"]["trace_id"] == traces[1].trace_id

    published = api_client.post(f"/api/v1/datasets/{dataset_id}/versions", {})
    assert published.status_code == 201 and published.json()["version"] == 1

    detail = api_client.get(f"/api/v1/datasets/{dataset_id}").json()
    assert detail["current_version"] == 1 and detail["versions"][0]["record_count"] == 2
    record_id = detail["records"][0]["record_id"]
    patched = api_client.patch(
        f"/api/v1/datasets/{dataset_id}/records/{record_id}", {"expectations": {"expected_answer": "Edited."}}
    )
    assert patched.status_code == 200 and patched.json()["expectations"] == {"expected_answer": "Edited."}
    assert api_client.delete(f"/api/v1/datasets/{dataset_id}/records/{record_id}").status_code == 204
    assert api_client.post(f"/api/v1/datasets/{dataset_id}/versions", {}).json()["version"] == 2

    lines = _body(api_client.get(f"/api/v1/datasets/{dataset_id}/versions/1/records?format=jsonl")).splitlines()
    first = json.loads(lines[0])
    assert first["inputs"] == {"question": "What is MLflow?"}
    assert first["expectations"] == {"expected_answer": "A platform."}
    assert first["source"]["trace_id"] == traces[0].trace_id
    assert first["source"]["expectations"]["expected_answer"]["assessment_id"].startswith("a-")
    assert len(lines) == 2

    response = api_client.get(f"/api/v1/datasets/{dataset_id}/versions/1/records?format=csv")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(_body(response).decode())))
    assert json.loads(rows[0]["expectations"]) == {"expected_answer": "A platform."}

    diff = api_client.get(f"/api/v1/datasets/{dataset_id}/diff?from=1&to=2").json()
    assert [item["record_id"] for item in diff["removed"]] == [record_id]
    assert diff["unchanged"] == 1


def test_bad_input_gets_a_4xx_naming_the_field(api_client, experiment, traces):
    dataset = services.create_dataset(experiment=experiment, actor=SYSTEM, name="golden")
    url = f"/api/v1/datasets/{dataset.pk}/records"
    assert "non_field_errors" in api_client.post(url, {}).json()
    bad_filter = api_client.post(url, {"filter": "feedback.x =="})
    assert bad_filter.status_code == 400 and "filter" in bad_filter.json()
    unknown = api_client.post(url, {"trace_ids": ["tr-" + "0" * 32]})
    assert unknown.status_code == 400 and "trace_ids" in unknown.json()
    assert api_client.post(url, {"filter": "tags.x = 'y'", "limit": 0}).status_code == 400
    empty = api_client.post(f"/api/v1/datasets/{dataset.pk}/versions", {})
    assert empty.status_code == 400 and "records" in empty.json()
    services.add_records_from_traces(dataset=dataset, actor=SYSTEM, trace_ids=[traces[0].trace_id])
    services.publish_version(dataset=dataset, actor=SYSTEM)
    assert api_client.get(f"/api/v1/datasets/{dataset.pk}/versions/1/records?format=xml").status_code == 400
    assert api_client.get(f"/api/v1/datasets/{dataset.pk}/versions/9/records").status_code == 404
    taken = api_client.post(f"/api/v1/experiments/{experiment.pk}/datasets", {"name": "golden"})
    assert taken.status_code == 409


def test_access_viewer_403_outsider_404(client, experiment, traces, viewer, outsider):
    dataset = services.create_dataset(experiment=experiment, actor=SYSTEM, name="golden")
    client.force_login(viewer)
    assert client.get(f"/api/v1/datasets/{dataset.pk}").status_code == 200
    response = client.post(
        f"/api/v1/datasets/{dataset.pk}/records", {"trace_ids": [traces[0].trace_id]}, content_type="application/json"
    )
    assert response.status_code == 403
    client.force_login(outsider)
    assert client.get(f"/api/v1/datasets/{dataset.pk}").status_code == 404
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {make_api_key(make_experiment())[1]}")
    assert other.get(f"/api/v1/datasets/{dataset.pk}").status_code == 404
    assert other.get(f"/api/v1/experiments/{experiment.pk}/datasets").status_code == 404


def test_reading_a_dataset_takes_constant_queries(api_client, experiment, django_assert_max_num_queries):
    dataset = services.create_dataset(experiment=experiment, actor=SYSTEM, name="golden")
    traces = [make_trace(experiment) for _ in range(8)]
    services.add_records_from_traces(dataset=dataset, actor=SYSTEM, trace_ids=[traces[0].trace_id])
    services.publish_version(dataset=dataset, actor=SYSTEM)
    with django_assert_max_num_queries(8) as small:
        api_client.get(f"/api/v1/datasets/{dataset.pk}")
    services.add_records_from_traces(dataset=dataset, actor=SYSTEM, trace_ids=[t.trace_id for t in traces])
    services.publish_version(dataset=dataset, actor=SYSTEM)
    with django_assert_max_num_queries(len(small.captured_queries)):
        api_client.get(f"/api/v1/datasets/{dataset.pk}")
    assert DatasetRecord.objects.count() == 8


def test_records_from_a_review_queues_completed_items(api_client, experiment, traces, other_experiment):
    from assessments.definitions import services as definitions
    from assessments.queues import services as queues
    from assessments.queues.models import QueueItem

    definitions.create_definition(experiment=experiment, actor=SYSTEM, name="correct", type="boolean")
    queue = queues.create_queue(experiment=experiment, actor=SYSTEM, name="triage", questions=["correct"])
    queues.add_items(queue=queue, actor=SYSTEM, trace_ids=[trace.trace_id for trace in traces])
    dataset_id = api_client.post(f"/api/v1/experiments/{experiment.pk}/datasets", {"name": "golden"}).json()[
        "dataset_id"
    ]
    records = f"/api/v1/datasets/{dataset_id}/records"

    nothing_done = api_client.post(records, {"queue_id": str(queue.pk)})
    assert nothing_done.status_code == 400 and "no completed items" in nothing_done.json()["queue_id"][0]
    QueueItem.objects.filter(trace_id__in=[traces[0].trace_id, traces[2].trace_id]).update(complete=True)
    added = api_client.post(records, {"queue_id": str(queue.pk)})
    assert added.status_code == 201, added.content
    assert {r["source"]["trace_id"] for r in added.json()["records"]} == {traces[0].trace_id, traces[2].trace_id}

    definitions.create_definition(experiment=other_experiment, actor=SYSTEM, name="correct", type="boolean")
    elsewhere = queues.create_queue(experiment=other_experiment, actor=SYSTEM, name="other", questions=["correct"])
    assert "queue_id" in api_client.post(records, {"queue_id": str(elsewhere.pk)}).json()
    assert "queue_id" in api_client.post(records, {"queue_id": "999999"}).json()
    both = api_client.post(records, {"queue_id": str(queue.pk), "trace_ids": [traces[1].trace_id]})
    assert both.status_code == 400 and "exactly one" in both.content.decode()
