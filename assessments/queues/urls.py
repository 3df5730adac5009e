"""The queue pages."""

from django.urls import path

from . import views

app_name = "queues"
urlpatterns = [
    path("queues/", views.queue_list, name="queue_list"),
    path("queues/<int:queue_id>/", views.queue_detail, name="queue_detail"),
    path("queues/<int:queue_id>/items/add/", views.queue_items_add, name="queue_items_add"),
    path("queues/<int:queue_id>/items/<str:trace_id>/remove/", views.queue_item_remove, name="queue_item_remove"),
    path("queues/<int:queue_id>/archive/", views.queue_archive, name="queue_archive"),
    path("queues/<int:queue_id>/review/", views.queue_review, name="queue_review"),
    path("queues/<int:queue_id>/review/next/", views.queue_review_next, name="queue_review_next"),
    path("queues/<int:queue_id>/review/<str:trace_id>/answer/", views.queue_review_answer, name="queue_review_answer"),
    path(
        "queues/<int:queue_id>/review/<str:trace_id>/decline/",
        views.queue_review_decline,
        name="queue_review_decline",
    ),
    path("experiments/<int:experiment_id>/queues/new/", views.queue_create, name="queue_create"),
    path("experiments/<int:experiment_id>/queues/add/", views.add_matching, name="add_matching"),
    path("experiments/<int:experiment_id>/queues/add/count/", views.matching_count, name="matching_count"),
]
