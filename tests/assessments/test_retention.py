"""Retention: the purge keeps recent, pinned and (when set) human-reviewed traces and deletes the rest
completely; batches; dry run; the PurgeRun record; `manage.py purge`; the pins; the retention page
and the admin going through the settings service."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from assessments.models import Assessment, Revision
from assessments.retention import pins, services
from assessments.retention.models import PurgeRun
from tests.factories import SYSTEM, make_expectation, make_experiment, make_feedback, make_trace
from traces.models import Span, Trace, TraceDeletion

NOW = timezone.now()


def old_trace(experiment, days: int, **fields):
    return make_trace(experiment, spans=3, request_time=NOW - timedelta(days=days), **fields)


@pytest.fixture
def aged(experiment):
    """An experiment keeping 30 days: two old unreviewed traces (one judged), an old trace with
    human feedback, an old trace with only an expectation and a recent one."""
    experiment.retention_days = 30
    experiment.save(update_fields=["retention_days"])
    judged = old_trace(experiment, 40)
    make_feedback(judged, name="relevance", value=0.3, source_type="LLM_JUDGE", source_id="judge")
    plain = old_trace(experiment, 90)
    human = old_trace(experiment, 60)
    make_feedback(human, value=False)
    expected = old_trace(experiment, 45)
    make_expectation(expected)
    recent = old_trace(experiment, 5)
    make_feedback(recent, value=True)
    return {"judged": judged, "plain": plain, "human": human, "expected": expected, "recent": recent}


def ids(*traces) -> set[str]:
    return {trace.trace_id for trace in traces}


def remaining(experiment) -> set[str]:
    return set(Trace.objects.filter(experiment=experiment).values_list("pk", flat=True))


def test_purge_deletes_old_traces_completely_and_keeps_recent(experiment, aged):
    result = services.purge_experiment(experiment=experiment, now=NOW)
    assert remaining(experiment) == ids(aged["recent"])
    gone = [aged[key].trace_id for key in ("judged", "plain", "human", "expected")]
    assert not Span.objects.filter(trace_id__in=gone).exists()
    assert not Assessment.objects.filter(trace_id__in=gone).exists()
    assert not Revision.objects.filter(trace_id__in=gone).exists()
    assert Assessment.objects.filter(trace=aged["recent"]).count() == 1
    assert (result.deleted, result.kept_pinned) == (4, 0)
    assert set(TraceDeletion.objects.get().trace_ids) == set(gone)
    assert TraceDeletion.objects.get().channel == "retention"


def test_keep_human_pins_traces_with_human_feedback_only(experiment, aged):
    experiment.retention_keep_human = True
    experiment.save(update_fields=["retention_keep_human"])
    result = services.purge_experiment(experiment=experiment, now=NOW)
    # the judge's feedback and the expectation do not pin; the human thumbs do
    assert remaining(experiment) == ids(aged["recent"], aged["human"])
    assert (result.deleted, result.kept_pinned) == (3, 1)
    run = PurgeRun.objects.get()
    assert (run.experiment, run.deleted, run.kept_pinned, run.retention_days) == (experiment, 3, 1, 30)
    assert run.cutoff == NOW - timedelta(days=30) and run.finished_at >= run.started_at
    assert run.actor_label == "system:purge"


def test_an_overridden_human_feedback_still_pins(experiment):
    from assessments import services as assessment_services

    experiment.retention_days, experiment.retention_keep_human = 7, True
    experiment.save(update_fields=["retention_days", "retention_keep_human"])
    trace = old_trace(experiment, 10)
    thumbs = make_feedback(trace, value=False)
    assessment_services.override(assessment=thumbs, actor=SYSTEM, channel="api", value=1, source_type="CODE")
    services.purge_experiment(experiment=experiment, now=NOW)
    assert remaining(experiment) == ids(trace)


def test_pinned_trace_ids_is_one_subquery_of_the_union_of_pins(experiment, aged, monkeypatch):
    experiment.retention_keep_human = True
    assert {row["pk"] for row in pins.pinned_trace_ids(experiment)} == ids(aged["human"], aged["recent"])
    experiment.retention_keep_human = False
    assert list(pins.pinned_trace_ids(experiment)) == []

    def expectations(exp):  # a second pin, as the datasets and queues features add theirs
        return Assessment.objects.filter(experiment_id=exp.pk, kind="expectation").values("trace_id")

    monkeypatch.setattr(pins, "expectations", expectations, raising=False)
    monkeypatch.setattr(pins, "PINS", (*pins.PINS, "assessments.retention.pins.expectations"))
    experiment.retention_keep_human = True
    pinned = {row["pk"] for row in pins.pinned_trace_ids(experiment)}
    assert pinned == ids(aged["human"], aged["recent"], aged["expected"])
    result = services.purge_experiment(experiment=experiment, now=NOW)
    assert remaining(experiment) == ids(aged["recent"], aged["human"], aged["expected"])
    assert result.kept_pinned == 2


def test_other_experiments_and_experiments_without_retention_are_untouched(experiment, aged):
    forever = make_experiment("forever")
    keep = old_trace(forever, 400)
    results = services.purge_all(now=NOW).experiments
    assert [result.experiment for result in results] == [experiment]
    assert remaining(forever) == ids(keep)
    with pytest.raises(ValueError, match="keeps its traces forever"):
        services.purge_experiment(experiment=forever)


def test_batches_are_small_transactions_each_with_its_audit_row(experiment):
    experiment.retention_days = 1
    experiment.save(update_fields=["retention_days"])
    old = [old_trace(experiment, 3 + n) for n in range(7)]
    result = services.purge_experiment(experiment=experiment, now=NOW, batch_size=3)
    assert (result.deleted, result.batches) == (7, 3)
    assert [row.trace_count for row in TraceDeletion.objects.order_by("created_at", "id")] == [3, 3, 1]
    assert remaining(experiment) == set()
    assert PurgeRun.objects.get().batches == 3
    assert len(old) == 7


def test_a_trace_pinned_between_listing_and_deleting_stays(experiment, monkeypatch):
    """The pins are read again by the statement that locks each batch."""
    experiment.retention_days, experiment.retention_keep_human = 1, True
    experiment.save(update_fields=["retention_days", "retention_keep_human"])
    trace = old_trace(experiment, 5)
    from assessments.retention import services as retention_services

    real_delete = retention_services.delete_traces

    def delete_after_a_review(**kwargs):
        make_feedback(trace, value=True)  # a reviewer rates it just now
        return real_delete(**kwargs)

    monkeypatch.setattr(retention_services, "delete_traces", delete_after_a_review)
    result = retention_services.purge_experiment(experiment=experiment, now=NOW)
    assert remaining(experiment) == ids(trace) and result.deleted == 0


def test_query_count_per_batch_does_not_grow_with_the_traces(experiment, django_assert_max_num_queries):
    experiment.retention_days = 1
    experiment.save(update_fields=["retention_days"])
    for n in range(12):
        trace = old_trace(experiment, 3 + n)
        make_feedback(trace, value=bool(n % 2))
    # kept count, then one batch: list, lock, revisions, held, spans, assessments (+ their
    # cascade reads), traces (+ cascade reads), audit row, savepoints; then the empty list and the run
    with django_assert_max_num_queries(30):
        services.purge_experiment(experiment=experiment, now=NOW, batch_size=100)
    assert remaining(experiment) == set()


def test_dry_run_counts_and_lists_but_deletes_nothing(experiment, aged):
    experiment.retention_keep_human = True
    result = services.purge_experiment(experiment=experiment, now=NOW, dry_run=True)
    assert (result.deleted, result.kept_pinned) == (3, 1)
    assert result.sample == [aged["plain"].trace_id, aged["expected"].trace_id, aged["judged"].trace_id]
    assert len(remaining(experiment)) == 5
    assert not PurgeRun.objects.exists() and not TraceDeletion.objects.exists()


# --- manage.py purge ---------------------------------------------------------------------------


def test_purge_command_dry_run_prints_what_would_go(experiment, aged):
    out = io.StringIO()
    call_command("purge", "--dry-run", stdout=out)
    text = out.getvalue()
    assert "rag-demo: would delete 4 trace(s) older than" in text and "(30 days)" in text
    assert "0 kept because pinned" in text
    assert aged["plain"].trace_id in text
    assert len(remaining(experiment)) == 5


def test_purge_command_deletes_and_reports(experiment, aged):
    out = io.StringIO()
    call_command("purge", "--experiment", "rag-demo", "--batch-size", "2", stdout=out)
    assert "rag-demo: deleted 4 trace(s)" in out.getvalue() and "in 2 batch(es)" in out.getvalue()
    assert remaining(experiment) == ids(aged["recent"])


def test_purge_command_refuses_bad_arguments(experiment):
    with pytest.raises(CommandError, match="keeps its traces forever"):
        call_command("purge", "--experiment", "rag-demo")
    with pytest.raises(CommandError, match="not found"):
        call_command("purge", "--experiment", "nope")
    with pytest.raises(CommandError, match="batch-size"):
        call_command("purge", "--batch-size", "0")
    out = io.StringIO()
    call_command("purge", stdout=out)
    assert "nothing to purge" in out.getvalue()


# --- the retention page and the admin ----------------------------------------------------------


def page(experiment):
    return reverse("retention:retention", args=[experiment.pk])


def test_owner_changes_retention_through_the_page(client, experiment, owner):
    client.force_login(owner)
    response = client.post(page(experiment), {"retention_days": "90", "retention_keep_human": "on"})
    assert response.status_code == 302
    experiment.refresh_from_db()
    assert (experiment.retention_days, experiment.retention_keep_human) == (90, True)
    response = client.post(page(experiment), {"retention_days": ""})
    experiment.refresh_from_db()
    assert (experiment.retention_days, experiment.retention_keep_human) == (None, False)


def test_bad_retention_is_shown_next_to_the_field(client, experiment, owner):
    client.force_login(owner)
    response = client.post(page(experiment), {"retention_days": "99999"})
    assert response.status_code == 200
    assert "from 1 to 36500" in response.content.decode()
    response = client.post(page(experiment), {"retention_days": "0"})
    assert response.status_code == 200 and "greater than or equal to 1" in response.content.decode()
    experiment.refresh_from_db()
    assert experiment.retention_days is None


def test_reviewers_see_the_settings_and_runs_but_cannot_change(client, experiment, aged, reviewer, outsider):
    services.purge_experiment(experiment=experiment, now=NOW)
    client.force_login(reviewer)
    html = client.get(page(experiment)).content.decode()
    assert "kept for <strong>30 days</strong>" in html and "<form" not in html.split("Settings")[1].split("Last")[0]
    assert '<td class="num">4</td>' in html
    assert client.post(page(experiment), {"retention_days": "1"}).status_code == 403
    client.force_login(outsider)
    assert client.get(page(experiment)).status_code == 404


def test_trace_list_links_to_the_retention_page(reviewer_client, experiment):
    html = reviewer_client.get(reverse("traces:trace_list", args=[experiment.pk])).content.decode()
    assert page(experiment) in html


def test_admin_edits_retention_through_the_service(client, experiment, staff):
    client.force_login(staff)
    url = reverse("admin:traces_experiment_change", args=[experiment.pk])
    form = {
        "name": experiment.name,
        "description": "",
        "verdict_name": experiment.verdict_name,
        "retention_days": "99999",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
    }
    response = client.post(url, form)
    assert response.status_code == 200 and "from 1 to 36500" in response.content.decode()
    experiment.refresh_from_db()
    assert experiment.retention_days is None
    response = client.post(url, {**form, "retention_days": "14", "retention_keep_human": "on"})
    assert response.status_code == 302
    experiment.refresh_from_db()
    assert (experiment.retention_days, experiment.retention_keep_human) == (14, True)


def test_admin_lists_purge_runs_read_only(client, experiment, aged, staff):
    services.purge_experiment(experiment=experiment, now=NOW)
    client.force_login(staff)
    html = client.get(reverse("admin:retention_purgerun_changelist")).content.decode()
    assert "rag-demo" in html
    run = PurgeRun.objects.get()
    assert client.post(reverse("admin:retention_purgerun_delete", args=[run.pk]), {"post": "yes"}).status_code == 403


def test_dataset_records_and_open_queue_items_pin_their_traces(experiment):
    from assessments.datasets import services as datasets
    from assessments.definitions import services as definitions
    from assessments.queues import services as queues
    from assessments.queues.models import QueueItem

    experiment.retention_days = 30
    experiment.save(update_fields=["retention_days"])
    in_draft, in_version, queued, reviewed, plain = (old_trace(experiment, 40) for _ in range(5))
    dataset = datasets.create_dataset(experiment=experiment, actor=SYSTEM, name="golden")
    datasets.add_records_from_traces(dataset=dataset, actor=SYSTEM, trace_ids=[in_version.trace_id])
    datasets.publish_version(dataset=dataset, actor=SYSTEM)
    datasets.delete_records(
        dataset=dataset, actor=SYSTEM, record_ids=list(dataset.records.values_list("pk", flat=True))
    )
    datasets.add_records_from_traces(dataset=dataset, actor=SYSTEM, trace_ids=[in_draft.trace_id])
    definitions.create_definition(experiment=experiment, actor=SYSTEM, name="correct", type="boolean")
    queue = queues.create_queue(experiment=experiment, actor=SYSTEM, name="triage", questions=["correct"])
    queues.add_items(queue=queue, actor=SYSTEM, trace_ids=[queued.trace_id, reviewed.trace_id])
    QueueItem.objects.filter(trace_id=reviewed.trace_id).update(complete=True)

    result = services.purge_experiment(experiment=experiment, now=NOW)
    # a published version's record pins as a draft's does; a finished queue item does not
    assert remaining(experiment) == ids(in_draft, in_version, queued)
    assert (result.deleted, result.kept_pinned) == (2, 3)
    assert not QueueItem.objects.filter(trace_id=reviewed.trace_id).exists()
