"""Review queues under concurrency on PostgreSQL (FOR UPDATE SKIP LOCKED): three reviewers in
threads work a queue of 100 traces with N = 2 until nothing is left."""

import threading
import time
from collections import Counter, defaultdict

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections, transaction

from assessments.models import Assessment
from assessments.queues import services
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
