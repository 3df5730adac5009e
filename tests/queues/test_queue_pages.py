"""The queue pages: list, queue page, new queue, adding the trace list's matches, focus mode."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from assessments.queues import services
from assessments.queues.models import QueueItem, QueueWork
from traces.access import Actor

from ..factories import make_trace
from .conftest import GOOD, SYSTEM

pytestmark = pytest.mark.django_db


def test_queue_list_and_detail_show_progress(client, queue, reviewer, other_reviewer, traces):
    for user in (reviewer, other_reviewer):
        services.next_item(queue=queue, actor=Actor.for_user(user))
        services.answer(queue=queue, actor=Actor.for_user(user), trace_id=traces[0].trace_id, answers=GOOD)
    client.force_login(reviewer)
    page = client.get("/queues/").content.decode()
    assert "Weekly review" in page and "1 of 5 complete" in page
    detail = client.get(f"/queues/{queue.pk}/?state=complete").content.decode()
    assert traces[0].trace_id in detail and "alice, bob" in detail
    assert '<span class="mono">alice</span> 1/5' in detail
    assert "Add items" not in detail  # reviewers do not manage
    open_items = client.get(f"/queues/{queue.pk}/").content.decode()
    assert traces[0].trace_id not in open_items and traces[1].trace_id in open_items


def test_owner_adds_and_removes_items_on_the_queue_page(client, queue, owner, defined):
    client.force_login(owner)
    extra = make_trace(defined)
    response = client.post(f"/queues/{queue.pk}/items/add/", {"trace_ids": extra.trace_id})
    assert response.status_code == 302
    assert "Added 1; 0 already queued" in client.get(response.url).content.decode()
    bad = client.post(f"/queues/{queue.pk}/items/add/", {"filter": "feedback.x ="})
    assert bad.status_code == 200 and "filter" in bad.content.decode()
    client.post(f"/queues/{queue.pk}/items/{extra.trace_id}/remove/", {"state": "open"})
    assert QueueItem.objects.get(queue=queue, trace_id=extra.trace_id).removed_at is not None


def test_new_queue_form_creates_a_queue(client, owner, defined, reviewer):
    client.force_login(owner)
    form = client.get(f"/experiments/{defined.pk}/queues/new/")
    assert form.status_code == 200 and "helpfulness" in form.content.decode()
    response = client.post(
        f"/experiments/{defined.pk}/queues/new/",
        {
            "name": "From the form",
            "questions": ["helpfulness", "correct"],
            "reviewers": ["alice"],
            "answers_per_item": 2,
            "lease_seconds": 300,
            "rule_filter": "",
            "rule_sample_rate": 1,
        },
    )
    assert response.status_code == 302
    client.force_login(reviewer)
    assert client.get(f"/experiments/{defined.pk}/queues/new/").status_code == 403


def test_add_the_matching_traces_from_the_trace_list(client, owner, defined, traces):
    queue = services.create_queue(experiment=defined, actor=SYSTEM, name="from list", questions=["correct"])
    client.force_login(owner)
    listing = client.get(f"/experiments/{defined.pk}/traces/?filter=status%20%3D%20%27OK%27")
    assert "Add the matching traces to a queue" in listing.content.decode()
    link = client.get(f"/experiments/{defined.pk}/queues/add/count/?filter=status = 'OK'").content.decode()
    assert "Add the 5 matching traces to a queue" in link
    page = client.get(f"/experiments/{defined.pk}/queues/add/?filter=status = 'OK'").content.decode()
    assert "Add the 5 matching traces to a queue" in page
    response = client.post(
        f"/experiments/{defined.pk}/queues/add/", {"filter": "status = 'OK'", "queue": queue.pk, "limit": 3}
    )
    assert response.status_code == 302 and QueueItem.objects.filter(queue=queue).count() == 3


def test_focus_mode_answers_then_opens_the_next_and_says_all_done(client, reviewer, defined, traces):
    queue = services.create_queue(experiment=defined, actor=SYSTEM, name="focus", questions=["correct", "helpfulness"])
    services.add_items(queue=queue, actor=SYSTEM, trace_ids=[traces[0].trace_id, traces[1].trace_id])
    client.force_login(reviewer)
    start = client.get(f"/queues/{queue.pk}/review/").content.decode()
    assert "Start reviewing" in start
    response = client.post(f"/queues/{queue.pk}/review/next/")
    assert response.url.endswith(f"?trace={traces[0].trace_id}")
    page = client.get(response.url).content.decode()
    assert "1 of 2" in page and "What is MLflow?" in page and 'data-key="5"' in page
    bad = client.post(f"/queues/{queue.pk}/review/{traces[0].trace_id}/answer/", {"q-correct": "true"})
    assert bad.status_code == 200 and "missing: helpfulness" in bad.content.decode()
    response = client.post(
        f"/queues/{queue.pk}/review/{traces[0].trace_id}/answer/", {"q-correct": "true", "q-helpfulness": "4"}
    )
    assert response.url.endswith(f"?trace={traces[1].trace_id}")
    response = client.post(f"/queues/{queue.pk}/review/{traces[1].trace_id}/decline/", {"reason": "other language"})
    assert response.url.endswith("?done=1")
    assert "All done" in client.get(response.url).content.decode()
    # going back shows the stored answer, checked, and saving again changes it
    back = client.get(f"/queues/{queue.pk}/review/?trace={traces[0].trace_id}").content.decode()
    assert 'value="4" data-key="4" checked' in back and "Changing an answer" in back
    client.post(f"/queues/{queue.pk}/review/{traces[0].trace_id}/answer/", {"q-correct": "false", "q-helpfulness": "4"})
    work = QueueWork.objects.get(item__trace_id=traces[0].trace_id, reviewer=reviewer)
    assert work.state == "answered"
    assert QueueWork.objects.get(item__trace_id=traces[1].trace_id).reason == "other language"


def test_blind_mode_hides_answers_on_the_trace_page(client, queue, traces, reviewer, other_reviewer):
    queue = services.update_queue(queue=queue, actor=SYSTEM, blind=True)
    bob = Actor.for_user(other_reviewer)
    services.next_item(queue=queue, actor=bob)
    services.answer(queue=queue, actor=bob, trace_id=traces[0].trace_id, answers={"correct": False, "helpfulness": 2})
    client.force_login(reviewer)
    page = client.get(f"/traces/{traces[0].trace_id}/").content.decode()
    assert "helpfulness" not in page
    # nor in the header's chips when the panel refreshes them
    summary = client.get(f"/traces/{traces[0].trace_id}/summary/", headers={"HX-Request": "true"})
    assert summary.status_code == 200 and "helpfulness" not in summary.content.decode()
    client.force_login(other_reviewer)
    assert (
        "helpfulness"
        in client.get(f"/traces/{traces[0].trace_id}/summary/", headers={"HX-Request": "true"}).content.decode()
    )
    assert "helpfulness" in client.get(f"/traces/{traces[0].trace_id}/").content.decode()


def test_focus_page_query_count_does_not_grow(client, reviewer, defined, settings):
    # the per-worker caches stay fresh during the test (a recheck is one more read, by time)
    settings.FEEDBACKHUB_DEFINITIONS_RECHECK_MS = settings.FEEDBACKHUB_QUEUE_RULES_RECHECK_MS = 600_000
    counts = []
    for spans in (1, 8):
        queue = services.create_queue(experiment=defined, actor=SYSTEM, name=f"q{spans}", questions=["correct"])
        trace = make_trace(defined, spans=spans)
        services.add_items(queue=queue, actor=SYSTEM, trace_ids=[trace.trace_id])
        work = services.next_item(queue=queue, actor=Actor.for_user(reviewer))
        client.force_login(reviewer)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/queues/{queue.pk}/review/?trace={work.item.trace_id}").status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1] and counts[0] <= 20
