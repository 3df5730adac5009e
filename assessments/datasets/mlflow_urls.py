"""Routes of MLflow's evaluation-dataset endpoints (before the traces catch-all). The client
calls /api/3.0/…; /api/2.0/… (the proto's own paths) and /ajax-api/… answer too."""

from django.urls import path

from . import mlflow_protocol as views

ROUTES = [
    ("datasets/create", views.create_dataset, "create"),
    ("datasets/search", views.search_datasets, "search"),
    ("datasets/<str:dataset_id>", views.dataset_detail, "detail"),
    ("datasets/<str:dataset_id>/records", views.dataset_records, "records"),
    ("datasets/<str:dataset_id>/experiment-ids", views.dataset_experiment_ids, "experiment_ids"),
    ("datasets/<str:dataset_id>/tags", views.dataset_tags, "tags"),
    ("datasets/<str:dataset_id>/tags/<str:key>", views.dataset_tag_delete, "tag_delete"),
]

urlpatterns = [
    path(
        f"{prefix}/{version}/mlflow/{route}", view, name=f"mlflow_dataset_{name}_{prefix.replace('-', '')}_{version[0]}"
    )
    for route, view, name in ROUTES
    for prefix in ("api", "ajax-api")
    for version in ("2.0", "3.0")
]
