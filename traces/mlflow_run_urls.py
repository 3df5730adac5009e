"""Routes of the MLflow protocol for runs and trace ↔ run links (traces.mlflow_runs).

Included by `feedbackhub/urls.py` before `traces.mlflow_urls`, whose catch-all answers
ENDPOINT_NOT_FOUND. Every /api/… route also answers under /ajax-api/….
"""

from django.urls import path

from . import mlflow_runs as views


def twins(route: str, view, name: str) -> list:
    return [path(f"api/{route}", view, name=name), path(f"ajax-api/{route}", view, name=f"ajax-{name}")]


RUNS = "2.0/mlflow/runs"

urlpatterns = [
    *twins(f"{RUNS}/create", views.run_create, "mlflow_run_create"),
    *twins(f"{RUNS}/get", views.run_get, "mlflow_run_get"),
    *twins(f"{RUNS}/update", views.run_update, "mlflow_run_update"),
    *twins(f"{RUNS}/search", views.run_search, "mlflow_run_search"),
    *twins(f"{RUNS}/log-batch", views.run_log_batch, "mlflow_run_log_batch"),
    *twins(f"{RUNS}/log-metric", views.run_log_metric, "mlflow_run_log_metric"),
    *twins(f"{RUNS}/log-parameter", views.run_log_param, "mlflow_run_log_param"),
    *twins(f"{RUNS}/set-tag", views.run_set_tag, "mlflow_run_set_tag"),
    *twins(f"{RUNS}/delete-tag", views.run_delete_tag, "mlflow_run_delete_tag"),
    *twins(f"{RUNS}/log-inputs", views.run_log_inputs, "mlflow_run_log_inputs"),
    *twins("2.0/mlflow/traces/link-to-run", views.link_traces_to_run, "mlflow_link_traces_to_run"),
]
