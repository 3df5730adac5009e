"""Review queues under concurrency on PostgreSQL (FOR UPDATE SKIP LOCKED): three reviewers in
threads work a queue of 100 traces with N = 2 until nothing is left."""

import threading
import time
from collections import Counter, defaultdict
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from assessments.models import Assessment, Revision
from assessments.queues import fastsql, selectors, services
from assessments.queues.models import QueueItem, QueueWork
from traces.access import Actor
from traces.models import Membership

from ..factories import make_experiment, make_trace
from .conftest import SYSTEM, define

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pg():
    if connection.vendor != "postgresql":
        pytest.skip("row locks with SKIP LOCKED: PostgreSQL only (SQLite serialises queue writes)")


def reviewers(experiment, count):
    users = []
    for n in range(count):
        user = get_user_model().objects.create_user(f"r{n}", password="pw")
        Membership.objects.create(user=user, experiment=experiment, role="reviewer")
        users.append(user)
    return users


def test_three_reviewers_at_once_give_exactly_n_answers_per_item(pg):
    experiment = make_experiment()
    define(experiment)
    traces = [make_trace(experiment) for _ in range(100)]
    ids = [t.trace_id for t in traces]
    queue = services.create_queue(
        experiment=experiment, actor=SYSTEM, name="concurrent", questions=["correct"], answers_per_item=2
    )
    assert services.add_items(queue=queue, actor=SYSTEM, trace_ids=ids)["added"] == 100
    users = reviewers(experiment, 3)
    answered: dict[str, list[str]] = defaultdict(list)
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def work(user):
        actor = Actor.for_user(user)
        try:
            start.wait()
            while True:
                item = services.next_item(queue=queue, actor=actor)
                if item is None:
                    break
                services.answer(
                    queue=queue, actor=actor, trace_id=item.item.trace_id, answers={"correct": len(answered) % 2 == 0}
                )
                answered[user.username].append(item.item.trace_id)
        except BaseException as exc:  # reported below, the test fails on it
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not any(thread.is_alive() for thread in threads), "a reviewer was still working after 300 s"
    assert errors == []
    assert sum(len(v) for v in answered.values()) == 200
    for username, trace_ids in answered.items():
        assert len(trace_ids) == len(set(trace_ids)), f"{username} answered an item twice"
    per_trace = Counter(t for trace_ids in answered.values() for t in trace_ids)
    assert set(per_trace) == set(ids) and set(per_trace.values()) == {2}
    # every item is complete with 2 answers from 2 different reviewers, and the rows agree
    assert QueueItem.objects.filter(queue=queue, complete=True, answer_count=2).count() == 100
    assert QueueWork.objects.filter(item__queue=queue, state="answered").count() == 200
    written = Assessment.objects.filter(trace__experiment=experiment, metadata__queue_id=str(queue.pk))
    assert written.count() == 200
    by_trace = defaultdict(set)
    for trace_id, source_id in written.values_list("trace_id", "source_id"):
        by_trace[trace_id].add(source_id)
    assert all(len(sources) == 2 for sources in by_trace.values()) and len(by_trace) == 100
    # adding the same traces again adds nothing
    assert services.add_items(queue=queue, actor=SYSTEM, trace_ids=ids) == {
        "added": 0,
        "already_queued": 100,
        "previously_removed": 0,
    }


def test_an_idle_lease_of_two_seconds_returns_the_item(pg):
    experiment = make_experiment()
    define(experiment)
    trace = make_trace(experiment)
    queue = services.create_queue(
        experiment=experiment, actor=SYSTEM, name="short leases", questions=["correct"], lease_seconds=2
    )
    services.add_items(queue=queue, actor=SYSTEM, trace_ids=[trace.trace_id])
    idle, waiting = (Actor.for_user(user) for user in reviewers(experiment, 2))
    assert services.next_item(queue=queue, actor=idle).item.trace_id == trace.trace_id
    assert services.next_item(queue=queue, actor=waiting) is None
    time.sleep(2.2)
    taken = services.next_item(queue=queue, actor=waiting)
    assert taken is not None and taken.item.trace_id == trace.trace_id
    services.answer(queue=queue, actor=waiting, trace_id=trace.trace_id, answers={"correct": True})
    # the idle reviewer's expired lease gives no right to a slot any more
    with pytest.raises(services.Conflict):
        services.answer(queue=queue, actor=idle, trace_id=trace.trace_id, answers={"correct": False})


def test_next_waits_for_an_item_being_answered_and_takes_its_free_slot(pg):
    """A is answering the only item (its lock held, the answer not committed yet); B asks for
    work: SKIP LOCKED skips the item, so B waits for it and must get it once A commits (N = 2:
    A's answer leaves a slot). Before, B's wait re-checked the item against a stale snapshot of
    the leases, counted A's lease and A's answer both, and got nothing."""
    experiment = make_experiment()
    define(experiment)
    trace = make_trace(experiment)
    queue = services.create_queue(
        experiment=experiment, actor=SYSTEM, name="one item", questions=["correct"], answers_per_item=2
    )
    services.add_items(queue=queue, actor=SYSTEM, trace_ids=[trace.trace_id])
    a, b = (Actor.for_user(user) for user in reviewers(experiment, 2))
    assert services.next_item(queue=queue, actor=a).item.trace_id == trace.trace_id
    answering, errors = threading.Event(), []

    def answer_slowly():
        try:
            with transaction.atomic():
                services.answer(queue=queue, actor=a, trace_id=trace.trace_id, answers={"correct": True})
                answering.set()
                time.sleep(1.0)  # B asks for work now and must wait for this commit
        except BaseException as exc:  # reported below
            errors.append(exc)
            answering.set()
        finally:
            connections.close_all()

    thread = threading.Thread(target=answer_slowly)
    thread.start()
    assert answering.wait(30)
    taken = services.next_item(queue=queue, actor=b)
    thread.join(30)
    assert errors == []
    assert taken is not None and taken.item.trace_id == trace.trace_id


def _statements(captured) -> list[str]:
    return [q["sql"] for q in captured.captured_queries]


def test_next_is_two_statements_and_answer_has_no_savepoint(pg, settings):
    settings.FEEDBACKHUB_DEFINITIONS_RECHECK_MS = settings.FEEDBACKHUB_QUEUE_RULES_RECHECK_MS = 600_000
    experiment = make_experiment()
    define(experiment)
    trace = make_trace(experiment)
    queue = services.create_queue(experiment=experiment, actor=SYSTEM, name="lean", questions=["correct"])
    services.add_items(queue=queue, actor=SYSTEM, trace_ids=[trace.trace_id])
    (user,) = reviewers(experiment, 1)
    actor = Actor.for_user(user)
    queue = selectors.queue_for_work(actor, queue.pk)  # reads the role and the reviewers list with the queue
    with CaptureQueriesContext(connection) as nxt:
        work = services.next_item(queue=queue, actor=actor)
    sql = _statements(nxt)
    assert sql[0] == "BEGIN" and sql[-1] == "COMMIT" and len(sql) == 4, sql
    assert "FOR UPDATE OF i SKIP LOCKED" in sql[1] and "set_config('synchronous_commit', 'off', true)" in sql[2]
    with CaptureQueriesContext(connection) as answered:
        services.answer(queue=queue, actor=actor, trace_id=work.item.trace_id, answers={"correct": True})
    sql = _statements(answered)
    assert not [s for s in sql if "SAVEPOINT" in s], sql
    # the one-statement insert wrote what the ORM path writes: the assessment and its create revision
    assessment = Assessment.objects.get(trace_id=trace.trace_id)
    assert (assessment.source_type, assessment.source_id, assessment.metadata) == (
        "HUMAN",
        user.username,
        {"queue_id": str(queue.pk)},
    )
    assert (assessment.experiment_id, assessment.created_by_id, assessment.definition_version) == (
        experiment.pk,
        user.pk,
        1,
    )
    (revision,) = Revision.objects.filter(assessment_id=assessment.pk)
    assert (revision.action, revision.channel, revision.actor_user_id, revision.before) == (
        "create",
        "queue",
        user.pk,
        None,
    )
    assert revision.after == assessment.snapshot()


def test_take_says_no_when_the_slot_filled_after_the_pick(pg):
    """The pick's snapshot may miss a lease committed before its lock was granted: take checks
    again with a fresh snapshot (others' live leases, answers, the reviewer's own answer or
    decline, removal) and writes nothing when the slot is gone."""
    experiment = make_experiment()
    define(experiment)
    traces = [make_trace(experiment) for _ in range(2)]
    queue = services.create_queue(experiment=experiment, actor=SYSTEM, name="race", questions=["correct"])
    services.add_items(queue=queue, actor=SYSTEM, trace_ids=[t.trace_id for t in traces])
    a, b = reviewers(experiment, 2)
    taken = services.next_item(queue=queue, actor=Actor.for_user(a))  # N = 1: a's lease fills the item
    now = timezone.now()

    def take(item_id, user):
        with transaction.atomic():
            return fastsql.take(
                item_id=item_id,
                user_id=user.pk,
                now=now,
                expires=now + timedelta(minutes=10),
                answers_per_item=1,
                commit_fast=False,
            )

    assert take(taken.item_id, b) is None
    renewed = take(taken.item_id, a)  # a's own live lease is renewed
    assert renewed.pk == taken.pk and renewed.item.trace_id == traces[0].trace_id
    other = QueueItem.objects.get(queue=queue, trace_id=traces[1].trace_id)
    services.decline(queue=queue, actor=Actor.for_user(b), trace_id=other.trace_id)
    assert take(other.pk, b) is None  # declined: never b's again
    QueueItem.objects.filter(pk=other.pk).update(removed_at=now)
    assert take(other.pk, a) is None  # removed
    assert list(QueueWork.objects.filter(reviewer=b).values_list("state", flat=True)) == ["declined"]
