"""Review queues through their services: adding, leasing, answering, declining, rules, deletion."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from assessments import trace_deletion
from assessments.models import Assessment, Revision
from assessments.queues import selectors, services
from assessments.queues.models import QueueItem, QueueWork
from traces.access import Actor
from traces.models import Membership

from ..factories import make_feedback, make_trace
from .conftest import GOOD, SYSTEM

pytestmark = pytest.mark.django_db


def as_user(user):
    return Actor.for_user(user)


def test_create_refuses_unknown_questions_and_bad_n(defined):
    with pytest.raises(ValidationError) as exc:
        services.create_queue(experiment=defined, actor=SYSTEM, name="q", questions=["nope"])
    assert "questions" in exc.value.message_dict and "'nope'" in exc.value.message_dict["questions"][0]
    with pytest.raises(ValidationError) as exc:
        services.create_queue(experiment=defined, actor=SYSTEM, name="q", questions=["correct"], answers_per_item=11)
    assert "answers_per_item" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        services.create_queue(experiment=defined, actor=SYSTEM, name="q", questions=["correct"], rule_filter="tags.x =")
    assert "rule_filter" in exc.value.message_dict


def test_reviewer_cannot_manage_but_owner_can(defined, reviewer, owner):
    with pytest.raises(PermissionDenied):
        services.create_queue(experiment=defined, actor=as_user(reviewer), name="q", questions=["correct"])
    queue = services.create_queue(experiment=defined, actor=as_user(owner), name="q", questions=["correct"])
    assert queue.answers_per_item == 1 and queue.lease_seconds == 600 and not queue.blind


def test_adding_is_idempotent_and_removed_items_stay_removed(queue, traces):
    ids = [t.trace_id for t in traces]
    assert services.add_items(queue=queue, actor=SYSTEM, trace_ids=ids) == {
        "added": 0,
        "already_queued": 5,
        "previously_removed": 0,
    }
    services.remove_item(queue=queue, actor=SYSTEM, trace_id=ids[0])
    assert services.add_items(queue=queue, actor=SYSTEM, trace_ids=ids[:2]) == {
        "added": 0,
        "already_queued": 1,
        "previously_removed": 1,
    }
    assert services.add_items(queue=queue, actor=SYSTEM, trace_ids=ids[:1], restore=True)["added"] == 1
    assert QueueItem.objects.filter(queue=queue, removed_at__isnull=True).count() == 5


def test_add_by_filter_with_limit_and_unknown_ids(defined, traces):
    queue = services.create_queue(experiment=defined, actor=SYSTEM, name="q", questions=["correct"])
    make_feedback(traces[1], name="correct", value=False)
    make_feedback(traces[3], name="correct", value=False)
    make_feedback(traces[4], name="correct", value=False)
    counts = services.add_items(queue=queue, actor=SYSTEM, filter="feedback.correct = false", limit=2)
    assert counts == {"added": 2, "already_queued": 0, "previously_removed": 0}
    with pytest.raises(ValidationError) as exc:
        services.add_items(queue=queue, actor=SYSTEM, filter="feedback.correct = ", limit=2)
    assert "filter" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        services.add_items(queue=queue, actor=SYSTEM, trace_ids=["tr-" + "f" * 32])
    assert "Not traces of this experiment" in exc.value.message_dict["trace_ids"][0]


def test_next_answer_fills_n_slots_with_different_reviewers(queue, traces, reviewer, other_reviewer, owner):
    alice, bob, olivia = as_user(reviewer), as_user(other_reviewer), as_user(owner)
    first = services.next_item(queue=queue, actor=alice)
    assert first.item.trace_id == traces[0].trace_id and first.state == "leased"
    # asking again returns the same lease, not a second slot
    assert services.next_item(queue=queue, actor=alice).item_id == first.item_id
    assert services.next_item(queue=queue, actor=bob).item_id == first.item_id  # N = 2: a second slot
    assert services.next_item(queue=queue, actor=olivia).item.trace_id == traces[1].trace_id  # both slots taken
    work, created = services.answer(queue=queue, actor=alice, trace_id=traces[0].trace_id, answers=GOOD)
    assert created and work.state == "answered"
    services.answer(queue=queue, actor=bob, trace_id=traces[0].trace_id, answers={"correct": False, "helpfulness": 2})
    item = QueueItem.objects.get(queue=queue, trace_id=traces[0].trace_id)
    assert item.complete and item.answer_count == 2
    written = Assessment.objects.filter(trace_id=traces[0].trace_id).order_by("create_time")
    assert written.count() == 4
    for a in written:
        assert a.source_type == "HUMAN" and a.metadata == {"queue_id": str(queue.pk)}
        assert a.definition_version == 1
    assert {a.source_id for a in written} == {"alice", "bob"}
    assert set(Revision.objects.filter(trace_id=traces[0].trace_id).values_list("channel", flat=True)) == {"queue"}
    # alice's next is a new item, never the one she answered
    assert services.next_item(queue=queue, actor=alice).item.trace_id == traces[1].trace_id


def test_answering_again_updates_with_revisions(queue, traces, reviewer):
    alice = as_user(reviewer)
    services.next_item(queue=queue, actor=alice)
    work, _ = services.answer(queue=queue, actor=alice, trace_id=traces[0].trace_id, answers=GOOD)
    again, created = services.answer(
        queue=queue,
        actor=alice,
        trace_id=traces[0].trace_id,
        answers={"correct": False, "helpfulness": 4},
        rationale={"correct": "wrong year"},
    )
    assert not created and again.assessment_ids == work.assessment_ids
    assert Assessment.objects.filter(trace_id=traces[0].trace_id).count() == 2
    changed = Assessment.objects.get(pk=work.assessment_ids["correct"])
    assert changed.value is False and changed.rationale == "wrong year" and changed.version == 2
    assert Revision.objects.filter(assessment_id=changed.pk, action="update", channel="queue").count() == 1
    assert QueueItem.objects.get(queue=queue, trace_id=traces[0].trace_id).answer_count == 1


def test_answers_are_checked_by_the_definitions(queue, traces, reviewer):
    alice = as_user(reviewer)
    with pytest.raises(ValidationError) as exc:
        services.answer(
            queue=queue, actor=alice, trace_id=traces[0].trace_id, answers={"correct": True, "helpfulness": 9}
        )
    assert "helpfulness (v1)" in str(exc.value)
    with pytest.raises(ValidationError) as exc:
        services.answer(queue=queue, actor=alice, trace_id=traces[0].trace_id, answers={"correct": True})
    assert "missing: helpfulness" in exc.value.message_dict["answers"][0]
    assert not Assessment.objects.exists() and not QueueWork.objects.filter(state="answered").exists()


def test_decline_gives_the_item_back_and_never_offers_it_again(queue, traces, reviewer, other_reviewer):
    alice, bob = as_user(reviewer), as_user(other_reviewer)
    queue = services.update_queue(queue=queue, actor=SYSTEM, answers_per_item=1)
    first = services.next_item(queue=queue, actor=alice)
    assert services.next_item(queue=queue, actor=bob).item_id != first.item_id
    services.decline(queue=queue, actor=alice, trace_id=first.item.trace_id, reason="not my language")
    assert services.next_item(queue=queue, actor=alice).item_id != first.item_id
    assert selectors.progress(queue)["reviewers"]["alice"] == {"answered": 0, "declined": 1, "leased": 1}
    with pytest.raises(services.Conflict):
        services.answer(queue=queue, actor=alice, trace_id=first.item.trace_id, answers=GOOD)


def test_expired_lease_frees_its_slot(queue, traces, reviewer, other_reviewer, owner):
    queue = services.update_queue(queue=queue, actor=SYSTEM, answers_per_item=1)
    first = services.next_item(queue=queue, actor=as_user(reviewer))
    assert services.next_item(queue=queue, actor=as_user(other_reviewer)).item_id != first.item_id
    QueueWork.objects.filter(pk=first.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert services.next_item(queue=queue, actor=as_user(owner)).item_id == first.item_id


def test_answer_without_a_slot_is_a_conflict(queue, traces, reviewer, other_reviewer, owner):
    queue = services.update_queue(queue=queue, actor=SYSTEM, answers_per_item=1)
    services.next_item(queue=queue, actor=as_user(reviewer))
    with pytest.raises(services.Conflict):
        services.answer(queue=queue, actor=as_user(other_reviewer), trace_id=traces[0].trace_id, answers=GOOD)


def test_work_is_a_persons_and_reviewers_list_limits_it(queue, reviewer, other_reviewer, viewer, api_key):
    with pytest.raises(PermissionDenied):
        services.next_item(queue=queue, actor=Actor.for_key(api_key[0]))
    with pytest.raises(PermissionDenied):
        services.next_item(queue=queue, actor=as_user(viewer))
    services.update_queue(queue=queue, actor=SYSTEM, reviewers=["bob"])
    with pytest.raises(PermissionDenied):
        services.next_item(queue=queue, actor=as_user(reviewer))
    assert services.next_item(queue=queue, actor=as_user(other_reviewer)) is not None
    with pytest.raises(ValidationError) as exc:
        services.update_queue(queue=queue, actor=SYSTEM, reviewers=["victor"])
    assert "victor" in exc.value.message_dict["reviewers"][0]


def test_nothing_left_returns_none(queue, traces, reviewer):
    alice = as_user(reviewer)
    for _ in traces:
        work = services.next_item(queue=queue, actor=alice)
        services.answer(queue=queue, actor=alice, trace_id=work.item.trace_id, answers=GOOD)
    assert services.next_item(queue=queue, actor=alice) is None
    assert selectors.previous_answered(queue, reviewer, None) == traces[-1].trace_id
    assert selectors.previous_answered(queue, reviewer, traces[-1].trace_id) == traces[-2].trace_id


def test_rule_adds_matching_traces_on_ingest_and_on_feedback(defined, django_capture_on_commit_callbacks):
    queue = services.create_queue(
        experiment=defined,
        actor=SYSTEM,
        name="thumbs down",
        questions=["correct"],
        rule_filter="feedback.correct = false OR tags.flag = 'yes'",
    )
    with django_capture_on_commit_callbacks(execute=True):
        flagged = make_trace(defined, tags={"flag": "yes"})
        plain = make_trace(defined)
    assert list(QueueItem.objects.filter(queue=queue).values_list("trace_id", "origin")) == [(flagged.trace_id, "rule")]
    with django_capture_on_commit_callbacks(execute=True):
        make_feedback(plain, name="correct", value=False)
    assert QueueItem.objects.filter(queue=queue, trace_id=plain.trace_id).exists()
    # a removed item is never re-added by the rule
    services.remove_item(queue=queue, actor=SYSTEM, trace_id=plain.trace_id)
    with django_capture_on_commit_callbacks(execute=True):
        make_feedback(plain, name="correct", value=False, source_id="other")
    assert QueueItem.objects.get(queue=queue, trace_id=plain.trace_id).removed_at is not None


def test_rule_sample_is_deterministic_by_trace_id(defined):
    from assessments.queues.rules import sampled

    picks = [sampled(f"tr-{n:032x}", 7, 0.25) for n in range(2000)]
    assert picks == [sampled(f"tr-{n:032x}", 7, 0.25) for n in range(2000)]
    assert 400 < sum(picks) < 600


def test_a_write_without_rules_costs_no_query(defined, traces, django_capture_on_commit_callbacks):
    from assessments.queues.rules import active_queues

    active_queues(defined.pk)  # cached for FEEDBACKHUB_QUEUE_RULES_RECHECK_MS
    with CaptureQueriesContext(connection) as with_hook, django_capture_on_commit_callbacks(execute=True) as hooks:
        make_feedback(traces[0], name="correct", value=True)
    assert len(hooks) == 1  # the hook ran, and asked the cache only
    queue_queries = [q["sql"] for q in with_hook.captured_queries if "queues_" in q["sql"]]
    assert queue_queries == []


def test_deleting_a_trace_removes_its_items_and_work(queue, traces, reviewer, owner):
    alice = as_user(reviewer)
    services.next_item(queue=queue, actor=alice)
    services.answer(queue=queue, actor=alice, trace_id=traces[0].trace_id, answers=GOOD)
    deletion = trace_deletion.delete_traces(
        experiment=queue.experiment, actor=SYSTEM, channel="api", trace_ids=[traces[0].trace_id]
    )
    assert deletion.removed["queue_items"] == 1
    assert not QueueItem.objects.filter(trace_id=traces[0].trace_id).exists()
    assert not QueueWork.objects.filter(item__trace_id=traces[0].trace_id).exists()
    assert selectors.progress(queue)["total"] == 4


def test_unfinished_item_trace_ids_for_retention(queue, traces, reviewer, other_reviewer):
    services.remove_item(queue=queue, actor=SYSTEM, trace_id=traces[4].trace_id)
    for user in (reviewer, other_reviewer):
        services.next_item(queue=queue, actor=as_user(user))
        services.answer(queue=queue, actor=as_user(user), trace_id=traces[0].trace_id, answers=GOOD)
    ids = set(selectors.unfinished_item_trace_ids(queue.experiment))
    assert ids == {t.trace_id for t in traces[1:4]}


def test_blind_queue_hides_other_answers_until_answered(queue, traces, reviewer, other_reviewer):
    from assessments.selectors import assessments_for_trace

    queue = services.update_queue(queue=queue, actor=SYSTEM, blind=True)
    bob, alice = as_user(other_reviewer), as_user(reviewer)
    services.next_item(queue=queue, actor=bob)
    services.answer(queue=queue, actor=bob, trace_id=traces[0].trace_id, answers=GOOD)
    make_feedback(traces[0], name="user_satisfaction", value=True)
    trace = traces[0]
    trace.refresh_from_db()
    seen = {a.name for a in assessments_for_trace(trace, alice)}
    assert seen == {"user_satisfaction"}
    assert {a.name for a in assessments_for_trace(trace, bob)} == {"correct", "helpfulness", "user_satisfaction"}
    services.next_item(queue=queue, actor=alice)
    services.answer(queue=queue, actor=alice, trace_id=trace.trace_id, answers=GOOD)
    assert len([a for a in assessments_for_trace(trace, alice) if a.name == "correct"]) == 2


def test_changing_n_rejudges_completion(queue, traces, reviewer):
    alice = as_user(reviewer)
    services.next_item(queue=queue, actor=alice)
    services.answer(queue=queue, actor=alice, trace_id=traces[0].trace_id, answers=GOOD)
    queue = services.update_queue(queue=queue, actor=SYSTEM, answers_per_item=1)
    assert QueueItem.objects.get(queue=queue, trace_id=traces[0].trace_id).complete
    Membership  # noqa: B018 (imported for the personas' roles)


def test_held_lease_is_this_queues_open_item(queue, traces, reviewer, defined):
    # `next` reads the reviewer's live leases from their side and keeps this queue's open ones
    alice = as_user(reviewer)
    other = services.create_queue(experiment=defined, actor=SYSTEM, name="other", questions=["correct"])
    services.add_items(queue=other, actor=SYSTEM, trace_ids=[traces[3].trace_id, traces[4].trace_id])
    elsewhere = services.next_item(queue=other, actor=alice)
    assert elsewhere.item.trace_id == traces[3].trace_id
    held = services.next_item(queue=queue, actor=alice)
    assert held.item.trace_id == traces[0].trace_id  # not the lease held in the other queue
    assert services.next_item(queue=other, actor=alice).pk == elsewhere.pk  # each queue's own lease comes back
    # a lease on an item that became complete (N lowered) is not handed out again
    QueueItem.objects.filter(pk=held.item_id).update(complete=True)
    assert services.next_item(queue=queue, actor=alice).item.trace_id == traces[1].trace_id


def test_an_expired_lease_of_ones_own_is_taken_again_in_the_same_row(queue, traces, reviewer):
    # the reviewer's expired lease is revived (PostgreSQL: ON CONFLICT … DO UPDATE), never a second row
    alice = as_user(reviewer)
    first = services.next_item(queue=queue, actor=alice)
    QueueWork.objects.filter(pk=first.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    again = services.next_item(queue=queue, actor=alice)
    assert again.pk == first.pk and again.item.trace_id == traces[0].trace_id and again.state == "leased"
    assert again.expires_at > timezone.now() and QueueWork.objects.filter(reviewer=reviewer).count() == 1
    # what next returns is the stored row, its item loaded
    stored = QueueWork.objects.get(pk=again.pk)
    assert (stored.item_id, stored.state, stored.expires_at, stored.assessment_ids, stored.reason) == (
        again.item.pk,
        again.state,
        again.expires_at,
        again.assessment_ids,
        again.reason,
    )
    assert (again.item.answer_count, again.item.complete, again.item.queue_id) == (0, False, queue.pk)


def test_next_never_overwrites_an_answer_or_a_decline(queue, traces, reviewer):
    alice = as_user(reviewer)
    queue = services.update_queue(queue=queue, actor=SYSTEM, answers_per_item=1)
    first = services.next_item(queue=queue, actor=alice)
    services.answer(queue=queue, actor=alice, trace_id=first.item.trace_id, answers=GOOD)
    second = services.next_item(queue=queue, actor=alice)
    services.decline(queue=queue, actor=alice, trace_id=second.item.trace_id)
    # the answer made the first item complete; reopen it (N = 2): still never alice's again
    queue = services.update_queue(queue=queue, actor=SYSTEM, answers_per_item=2)
    offered = [services.next_item(queue=queue, actor=alice).item.trace_id]
    assert offered == [traces[2].trace_id]
    states = dict(QueueWork.objects.filter(reviewer=reviewer).values_list("item__trace_id", "state"))
    assert states == {traces[0].trace_id: "answered", traces[1].trace_id: "declined", traces[2].trace_id: "leased"}


def test_queue_for_work_reads_role_and_reviewers_list_with_the_queue(
    queue, reviewer, other_reviewer, viewer, outsider, staff, django_assert_num_queries
):
    # one query: the queue, the membership role (kept on the actor) and the reviewers listing
    alice = as_user(reviewer)
    with django_assert_num_queries(1):
        found = selectors.queue_for_work(alice, queue.pk)
        assert services.reviewer_of(found, alice) == reviewer
    assert found.questions == ["correct", "helpfulness"] and found.blind is False
    services.update_queue(queue=queue, actor=SYSTEM, reviewers=["bob"])
    alice = as_user(reviewer)
    with django_assert_num_queries(1), pytest.raises(PermissionDenied):
        services.reviewer_of(selectors.queue_for_work(alice, queue.pk), alice)
    bob = as_user(other_reviewer)
    assert services.reviewer_of(selectors.queue_for_work(bob, queue.pk), bob) == other_reviewer
    with pytest.raises(PermissionDenied):  # a viewer sees the queue but does not work it
        services.reviewer_of(selectors.queue_for_work(as_user(viewer), queue.pk), as_user(viewer))
    for missing in (queue.pk + 1000, "x", None):
        with pytest.raises(Http404):
            selectors.queue_for_work(bob, missing)
    with pytest.raises(Http404):
        selectors.queue_for_work(as_user(outsider), queue.pk)
    # staff: role from the flag (owner), the reviewers list still applies
    charlie = as_user(staff)
    with pytest.raises(PermissionDenied):
        services.reviewer_of(selectors.queue_for_work(charlie, queue.pk), charlie)
    services.update_queue(queue=queue, actor=SYSTEM, reviewers=[])
    assert services.reviewer_of(selectors.queue_for_work(charlie, queue.pk), charlie) == staff
    # a listing read for another user is not taken for this one
    listed = selectors.queue_for_work(bob, queue.pk)
    services.update_queue(queue=queue, actor=SYSTEM, reviewers=["bob"])
    with pytest.raises(PermissionDenied):
        services.reviewer_of(listed, as_user(reviewer))
