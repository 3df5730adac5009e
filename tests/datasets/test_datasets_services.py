"""Dataset services: records with provenance from traces, filters and lists; merge by inputs;
edits; published versions that never change; the diff; the traces pinned for retention."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from assessments import services as assessment_services
from assessments.datasets import selectors, services
from assessments.datasets.models import DatasetRecord, DatasetVersionRecord, ImmutableError
from assessments.models import Revision
from traces.access import Actor
from traces.filters import FilterError
from traces.services import Conflict

from ..factories import SYSTEM, make_expectation, make_experiment, make_feedback, make_trace

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(experiment):
    return services.create_dataset(experiment=experiment, actor=SYSTEM, name="golden")


def test_create_refuses_a_taken_name_and_a_viewer(experiment, dataset, viewer):
    with pytest.raises(Conflict):
        services.create_dataset(experiment=experiment, actor=SYSTEM, name="golden")
    with pytest.raises(PermissionDenied):
        services.create_dataset(experiment=experiment, actor=Actor.for_user(viewer), name="other")
    with pytest.raises(ValidationError) as caught:
        services.create_dataset(experiment=experiment, actor=SYSTEM, name="  ")
    assert "name" in caught.value.message_dict


def test_a_record_copies_request_valid_expectations_output_and_provenance(experiment, dataset):
    trace = make_trace(experiment, spans=2, metadata={"mlflow.trace.session": "s-1"})
    old = make_expectation(trace, name="expected_answer", value="old")
    assessment_services.update(assessment=old, actor=SYSTEM, channel="api", value="A platform.")
    make_expectation(trace, name="facts", value=["open source"])
    make_feedback(trace, name="user_satisfaction", value=False)  # feedback is not an expectation

    result = services.add_records_from_traces(dataset=dataset, actor=SYSTEM, trace_ids=[trace.trace_id])

    assert (result.added, result.updated) == (1, 0)
    record = DatasetRecord.objects.get()
    assert record.inputs == {"question": "What is MLflow?"}
    assert record.outputs == "MLflow is an open source platform."
    assert record.expectations == {"expected_answer": "A platform.", "facts": ["open source"]}
    assert record.source_trace_id == trace.trace_id
    taken = record.source["expectations"]["expected_answer"]
    assert taken["assessment_id"] == old.assessment_id
    assert taken["version"] == 2
    assert taken["revision_id"] == Revision.objects.filter(assessment_id=old.assessment_id).latest("id").pk
    assert record.source["session_id"] == "s-1"


def test_the_reference_output_is_optional(experiment, dataset):
    trace = make_trace(experiment)
    make_expectation(trace, name="expected_answer", value="kept")
    services.add_records_from_traces(dataset=dataset, actor=SYSTEM, trace_ids=[trace.trace_id], include_outputs=False)
    assert DatasetRecord.objects.get().outputs is None


def test_adding_a_trace_again_refreshes_its_record(experiment, dataset):
    trace = make_trace(experiment)
    services.add_records_from_traces(dataset=dataset, actor=SYSTEM, trace_ids=[trace.trace_id])
    make_expectation(trace, name="expected_answer", value="later")
    result = services.add_records_from_traces(dataset=dataset, actor=SYSTEM, trace_ids=[trace.trace_id])
    assert (result.added, result.updated) == (0, 1)
    assert DatasetRecord.objects.get().expectations == {"expected_answer": "later"}


def test_unknown_and_foreign_trace_ids_are_named(experiment, dataset):
    foreign = make_trace(make_experiment())
    with pytest.raises(ValidationError) as caught:
        services.add_records_from_traces(dataset=dataset, actor=SYSTEM, trace_ids=[foreign.trace_id, "tr-nope"])
    assert foreign.trace_id in str(caught.value.message_dict["trace_ids"])
    assert not DatasetRecord.objects.exists()


def test_add_from_a_filter_takes_the_newest_matches_up_to_the_limit(experiment, dataset):
    traces = [make_trace(experiment) for _ in range(4)]
    for trace in traces[:3]:
        make_expectation(trace, name="expected_answer", value="x")
    make_feedback(traces[0], name="user_satisfaction", value=False)
    result = services.add_records_from_filter(
        dataset=dataset, actor=SYSTEM, filter_text="expectation.expected_answer IS NOT NULL", limit=2
    )
    assert result.added == 2
    result = services.add_records_from_filter(
        dataset=dataset,
        actor=SYSTEM,
        filter_text="expectation.expected_answer IS NOT NULL AND feedback.user_satisfaction = false",
    )
    assert [r.source_trace_id for r in result.records] == [traces[0].trace_id]
    with pytest.raises(FilterError):
        services.add_records_from_filter(dataset=dataset, actor=SYSTEM, filter_text="feedback. = 1")
    with pytest.raises(ValidationError):
        services.add_records_from_filter(dataset=dataset, actor=SYSTEM, filter_text="tags.none = 'x'")


def test_adding_many_traces_takes_a_constant_number_of_queries(experiment, dataset, django_assert_max_num_queries):
    traces = [make_trace(experiment) for _ in range(12)]
    for trace in traces:
        make_expectation(trace)
    with django_assert_max_num_queries(12):
        services.add_records_from_traces(dataset=dataset, actor=SYSTEM, trace_ids=[t.trace_id for t in traces[:2]])
    with django_assert_max_num_queries(12):
        services.add_records_from_traces(dataset=dataset, actor=SYSTEM, trace_ids=[t.trace_id for t in traces])


def test_published_versions_never_change(experiment, dataset):
    first, second = make_trace(experiment), make_trace(experiment)
    make_expectation(first, value="one")
    services.add_records_from_traces(dataset=dataset, actor=SYSTEM, trace_ids=[first.trace_id, second.trace_id])
    v1 = services.publish_version(dataset=dataset, actor=SYSTEM, note="first")
    assert (v1.version, v1.record_count) == (1, 2)
    frozen = [selectors.record_line(r) for r in selectors.version_records(v1)]

    record = DatasetRecord.objects.get(source_trace_id=first.trace_id)
    services.update_record(record=record, actor=SYSTEM, expectations={"expected_answer": "edited"})
    services.delete_records(
        dataset=dataset, actor=SYSTEM, record_ids=[DatasetRecord.objects.get(source_trace_id=second.trace_id).pk]
    )
    services.merge_records(dataset=dataset, actor=SYSTEM, records=[{"inputs": {"q": "new"}}])
    v2 = services.publish_version(dataset=dataset, actor=SYSTEM)

    assert v2.version == 2 and dataset.current_version == 2
    assert [selectors.record_line(r) for r in selectors.version_records(v1)] == frozen
    copy = DatasetVersionRecord.objects.filter(version=v1).first()
    copy.expectations = {"tampered": True}
    with pytest.raises(ImmutableError):
        copy.save()

    change = selectors.diff(dataset, 1, 2)
    assert [c.record_id for c in change.added] == [DatasetRecord.objects.get(source_trace_id=None).pk]
    assert [c.after for c in change.removed] == [None] and len(change.removed) == 1
    assert [c.fields for c in change.changed] == [["expectations", "source"]]
    assert change.changed[0].after["source"]["expectations"]["expected_answer"]["edited_by"] == "system:tests"
    assert selectors.diff(dataset, 2, "draft").unchanged == 2


def test_publishing_an_empty_draft_is_refused(dataset):
    with pytest.raises(ValidationError):
        services.publish_version(dataset=dataset, actor=SYSTEM)


def test_merge_records_upserts_by_inputs(dataset):
    inserted, updated = services.merge_records(
        dataset=dataset,
        actor=SYSTEM,
        records=[
            {"inputs": {"q": "a"}, "expectations": {"x": 1}, "tags": {"t": "1"}},
            {"inputs": {"q": "b"}, "source": {"source_type": "HUMAN", "source_data": {}}},
        ],
    )
    assert (inserted, updated) == (2, 0)
    inserted, updated = services.merge_records(
        dataset=dataset, actor=SYSTEM, records=[{"inputs": {"q": "a"}, "expectations": {"y": 2}, "outputs": "o"}]
    )
    assert (inserted, updated) == (0, 1)
    (record,) = [r for r in DatasetRecord.objects.all() if r.inputs == {"q": "a"}]
    assert record.expectations == {"x": 1, "y": 2} and record.outputs == "o" and record.tags == {"t": "1"}
    with pytest.raises(ValidationError):
        services.merge_records(dataset=dataset, actor=SYSTEM, records=[{"expectations": {}}])


def test_pinned_trace_ids_cover_drafts_and_published_versions(experiment, dataset):
    kept, published_only, free = make_trace(experiment), make_trace(experiment), make_trace(experiment)
    make_trace(make_experiment())
    services.add_records_from_traces(dataset=dataset, actor=SYSTEM, trace_ids=[kept.trace_id, published_only.trace_id])
    services.publish_version(dataset=dataset, actor=SYSTEM)
    services.delete_records(
        dataset=dataset,
        actor=SYSTEM,
        record_ids=list(
            DatasetRecord.objects.filter(source_trace_id=published_only.trace_id).values_list("pk", flat=True)
        ),
    )
    pinned = selectors.pinned_trace_ids(experiment)
    assert set(pinned) == {kept.trace_id, published_only.trace_id}
    assert free.trace_id not in set(pinned)
    assert set(
        pinned.model.objects.exclude(pk__in=pinned).filter(experiment=experiment).values_list("pk", flat=True)
    ) == {free.trace_id}


def test_viewers_cannot_write_records(experiment, dataset, viewer):
    trace = make_trace(experiment)
    with pytest.raises(PermissionDenied):
        services.add_records_from_traces(dataset=dataset, actor=Actor.for_user(viewer), trace_ids=[trace.trace_id])
    with pytest.raises(PermissionDenied):
        services.publish_version(dataset=dataset, actor=Actor.for_user(viewer))


def test_search_datasets_uses_the_filter_language(experiment, dataset):
    services.create_dataset(experiment=experiment, actor=SYSTEM, name="silver", tags={"team": "qa"})
    names = lambda text: sorted(d.name for d in selectors.search_datasets(SYSTEM, filter_text=text))  # noqa: E731
    assert names("name = 'golden'") == ["golden"]
    assert names("name LIKE 'gol%' OR tags.team = 'qa'") == ["golden", "silver"]
    assert names("tags.team != 'qa'") == []
    assert names("created_time >= 0") == ["golden", "silver"]
    with pytest.raises(FilterError):
        names("feedback.x = 1")
