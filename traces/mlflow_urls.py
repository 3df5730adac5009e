"""Routes of the MLflow protocol that only involve experiments and traces.

Every /api/… route also answers under /ajax-api/… (MLflow's UI prefix). The catch-all
at the end gives unimplemented MLflow routes a JSON ENDPOINT_NOT_FOUND, so
`feedbackhub/urls.py` includes `assessments.mlflow_urls` before this module.
"""

from django.urls import path, re_path

from . import mlflow_experiments as experiments
from . import mlflow_protocol as views
from . import mlflow_server as server


def twins(route: str, view, name: str) -> list:
    return [path(f"api/{route}", view, name=name), path(f"ajax-api/{route}", view, name=f"ajax-{name}")]


urlpatterns = [
    path("version", server.version, name="mlflow_version"),
    path("health", server.health, name="mlflow_health"),
    *twins("3.0/mlflow/server-info", server.server_info, "mlflow_server_info"),
    *twins("2.0/mlflow/experiments/get-by-name", experiments.experiment_get_by_name, "mlflow_experiment_get_by_name"),
    *twins("2.0/mlflow/experiments/create", experiments.experiment_create, "mlflow_experiment_create"),
    *twins("2.0/mlflow/experiments/get", experiments.experiment_get, "mlflow_experiment_get"),
    *twins("2.0/mlflow/experiments/search", experiments.experiment_search, "mlflow_experiment_search"),
    *twins("2.0/mlflow/experiments/list", experiments.experiment_search, "mlflow_experiment_list"),
    *twins("2.0/mlflow/traces/<str:trace_id>/tags", views.trace_tags, "mlflow_trace_tags"),
    *twins("3.0/mlflow/traces/<str:trace_id>/tags", views.trace_tags, "mlflow_trace_tags_v3"),
    re_path(
        r"^(?:ajax-)?api/[23]\.0/mlflow(?:-artifacts)?/(?P<rest>.*)$",
        server.endpoint_not_found,
        name="mlflow_endpoint_not_found",
    ),
]
