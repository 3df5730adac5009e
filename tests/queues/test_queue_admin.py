"""Review queues in Django admin: read-only, with item counts computed in the list's own query."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from assessments.queues import services
from assessments.queues.models import Queue, QueueItem

from ..factories import make_trace
from .conftest import SYSTEM


def test_queue_list_shows_counts_with_queries_that_do_not_grow(admin_client, queue, traces):
    QueueItem.objects.filter(queue=queue, trace=traces[0]).update(complete=True)
    services.remove_item(queue=queue, actor=SYSTEM, trace_id=traces[1].trace_id)

    response = admin_client.get("/admin/queues/queue/")
    assert response.status_code == 200
    row = next(line for line in response.content.decode().split("<tr") if "Weekly review" in line)
    assert '<td class="field-items">4</td>' in row  # 5 added, 1 removed
    assert '<td class="field-complete">1</td>' in row
    assert f'href="/queues/{queue.pk}/"' in row

    with CaptureQueriesContext(connection) as one:
        admin_client.get("/admin/queues/queue/")
    for number in range(5):
        extra = services.create_queue(
            experiment=queue.experiment, actor=SYSTEM, name=f"Queue {number}", questions=["correct"]
        )
        services.add_items(
            queue=extra, actor=SYSTEM, trace_ids=[make_trace(queue.experiment, spans=1).trace_id for _ in range(3)]
        )
    with CaptureQueriesContext(connection) as six:
        response = admin_client.get("/admin/queues/queue/")
    assert response.content.decode().count("Open the queue") == 6
    assert len(six) == len(one)


def test_queues_cannot_be_added_changed_or_deleted_in_admin(admin_client, queue):
    assert admin_client.get("/admin/queues/queue/add/").status_code == 403
    assert admin_client.post(f"/admin/queues/queue/{queue.pk}/delete/", {"post": "yes"}).status_code == 403
    page = admin_client.get(f"/admin/queues/queue/{queue.pk}/change/")
    assert page.status_code == 200 and b'type="submit"' not in page.content.split(b'id="content-main"')[1]
    assert Queue.objects.filter(pk=queue.pk).exists()
