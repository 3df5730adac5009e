from django.urls import path

from . import api

urlpatterns = [
    path("experiments/<str:experiment_id>/queues", api.QueueListApi.as_view(), name="api_queues"),
    path("queues/<str:queue_id>", api.QueueDetailApi.as_view(), name="api_queue_detail"),
    path("queues/<str:queue_id>/items", api.QueueItemsApi.as_view(), name="api_queue_items"),
    path("queues/<str:queue_id>/items/<str:trace_id>", api.QueueItemDeleteApi.as_view(), name="api_queue_item"),
    path("queues/<str:queue_id>/next", api.QueueNextApi.as_view(), name="api_queue_next"),
    path("queues/<str:queue_id>/items/<str:trace_id>/answers", api.QueueAnswerApi.as_view(), name="api_queue_answer"),
    path("queues/<str:queue_id>/items/<str:trace_id>/decline", api.QueueDeclineApi.as_view(), name="api_queue_decline"),
    path("queues/<str:queue_id>/progress", api.QueueProgressApi.as_view(), name="api_queue_progress"),
]
