"""The dataset pages: list and create, the trace list selection, add by filter, edit and
remove, publish, a version, the diff; viewers read only; constant queries."""

import pytest

from assessments.datasets import services
from assessments.datasets.models import Dataset, DatasetRecord

from ..factories import SYSTEM, make_expectation, make_trace

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(experiment):
    return services.create_dataset(experiment=experiment, actor=SYSTEM, name="golden")


def test_create_from_the_list_page(reviewer_client, experiment):
    response = reviewer_client.post(f"/experiments/{experiment.pk}/datasets/", {"name": "golden"})
    dataset = Dataset.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/datasets/{dataset.pk}/"
    page = reviewer_client.get(f"/experiments/{experiment.pk}/datasets/")
    assert b"golden" in page.content
    taken = reviewer_client.post(f"/experiments/{experiment.pk}/datasets/", {"name": "golden"})
    assert taken.status_code == 200 and b"exists in this experiment" in taken.content


def test_the_trace_list_selection_adds_to_a_new_dataset(reviewer_client, experiment):
    traces = [make_trace(experiment) for _ in range(2)]
    listing = reviewer_client.get(f"/experiments/{experiment.pk}/traces/")
    assert b'form="trace-selection"' in listing.content
    query = "&".join(f"trace={t.trace_id}" for t in traces)
    picker = reviewer_client.get(f"/experiments/{experiment.pk}/datasets/add-selected/?{query}")
    assert b"Add 2 traces to a dataset" in picker.content
    response = reviewer_client.post(
        f"/experiments/{experiment.pk}/datasets/add-selected/",
        {"trace": [t.trace_id for t in traces], "dataset": "new", "name": "picked"},
    )
    dataset = Dataset.objects.get(name="picked")
    assert response.status_code == 302 and response["Location"].startswith(f"/datasets/{dataset.pk}/?added=2")
    assert set(DatasetRecord.objects.values_list("source_trace_id", flat=True)) == {t.trace_id for t in traces}


def test_add_by_filter_shows_a_parse_error_next_to_the_field(reviewer_client, experiment, dataset):
    trace = make_trace(experiment)
    make_expectation(trace)
    bad = reviewer_client.post(f"/datasets/{dataset.pk}/records/add/", {"filter": "expectation. = 1", "limit": 5})
    assert bad.status_code == 200 and b"This filter does not parse" in bad.content
    good = reviewer_client.post(
        f"/datasets/{dataset.pk}/records/add/",
        {"filter": "expectation.expected_answer IS NOT NULL", "limit": 5, "include_outputs": "on"},
    )
    assert good.status_code == 302
    page = reviewer_client.get(f"/datasets/{dataset.pk}/")
    assert f'href="/traces/{trace.trace_id}/"'.encode() in page.content


def test_edit_remove_publish_version_and_diff(reviewer_client, experiment, dataset):
    traces = [make_trace(experiment) for _ in range(2)]
    services.add_records_from_traces(dataset=dataset, actor=SYSTEM, trace_ids=[t.trace_id for t in traces])
    assert reviewer_client.post(f"/datasets/{dataset.pk}/publish/", {"note": "first"}).status_code == 302
    first, second = DatasetRecord.objects.order_by("created_at", "record_id")
    bad = reviewer_client.post(f"/datasets/{dataset.pk}/records/{first.pk}/edit/", {"inputs": "[1]"})
    assert bad.status_code == 200 and b"Write a JSON object" in bad.content
    edited = reviewer_client.post(
        f"/datasets/{dataset.pk}/records/{first.pk}/edit/",
        {"inputs": '{"question": "Edited?"}', "expectations": '{"expected_answer": "yes"}', "outputs": "", "tags": ""},
    )
    assert edited.status_code == 302
    deleted = reviewer_client.post(
        f"/datasets/{dataset.pk}/records/{second.pk}/delete/", headers={"HX-Request": "true"}
    )
    assert deleted["HX-Redirect"] == f"/datasets/{dataset.pk}/#records"
    assert reviewer_client.post(f"/datasets/{dataset.pk}/publish/", {}).status_code == 302

    version = reviewer_client.get(f"/datasets/{dataset.pk}/versions/1/")
    assert b"What is MLflow?" in version.content and b"Edited?" not in version.content
    diff = reviewer_client.get(f"/datasets/{dataset.pk}/diff/?from=1&to=2")
    assert b"1 removed" in diff.content and b"1 changed" in diff.content


def test_viewers_read_but_get_no_forms(client, viewer, experiment, dataset):
    client.force_login(viewer)
    page = client.get(f"/datasets/{dataset.pk}/")
    assert page.status_code == 200 and b"Publish version" not in page.content
    assert client.post(f"/datasets/{dataset.pk}/publish/", {}).status_code == 403


def test_outsiders_get_404(client, outsider, dataset):
    client.force_login(outsider)
    assert client.get(f"/datasets/{dataset.pk}/").status_code == 404


def test_the_dataset_page_takes_constant_queries(reviewer_client, experiment, dataset, django_assert_max_num_queries):
    traces = [make_trace(experiment) for _ in range(6)]
    services.add_records_from_traces(dataset=dataset, actor=SYSTEM, trace_ids=[traces[0].trace_id])
    services.publish_version(dataset=dataset, actor=SYSTEM)
    with django_assert_max_num_queries(12) as small:
        reviewer_client.get(f"/datasets/{dataset.pk}/")
    services.add_records_from_traces(dataset=dataset, actor=SYSTEM, trace_ids=[t.trace_id for t in traces])
    services.publish_version(dataset=dataset, actor=SYSTEM)
    with django_assert_max_num_queries(len(small.captured_queries)):
        reviewer_client.get(f"/datasets/{dataset.pk}/")


def test_the_edit_form_round_trips_a_text_output(reviewer_client, experiment, dataset):
    trace = make_trace(experiment)
    services.add_records_from_traces(dataset=dataset, actor=SYSTEM, trace_ids=[trace.trace_id])
    record = DatasetRecord.objects.get()
    form = reviewer_client.get(f"/datasets/{dataset.pk}/records/{record.pk}/edit/")
    initial = {name: form.context["form"][name].value() for name in ("inputs", "expectations", "outputs", "tags")}
    assert reviewer_client.post(f"/datasets/{dataset.pk}/records/{record.pk}/edit/", initial).status_code == 302
    record.refresh_from_db()
    assert record.outputs == "MLflow is an open source platform."


def test_admin_lists_shows_and_deletes_through_the_service(client, experiment, dataset, django_user_model):
    admin_user = django_user_model.objects.create_superuser("root", password="root-pass-123")
    client.force_login(admin_user)
    trace = make_trace(experiment)
    services.add_records_from_traces(dataset=dataset, actor=SYSTEM, trace_ids=[trace.trace_id])
    assert b"golden" in client.get("/admin/datasets/dataset/").content
    detail = client.get(f"/admin/datasets/dataset/{dataset.pk}/change/")
    assert detail.status_code == 200 and trace.trace_id.encode() in detail.content
    assert client.post(f"/admin/datasets/dataset/{dataset.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not Dataset.objects.exists() and not DatasetRecord.objects.exists()
