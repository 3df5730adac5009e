"""Routes of the MLflow protocol that involve assessments, and OTLP /v1/traces.

Literal trace routes (search, get, batchGet…) come before `traces/<trace_id>`.
Every /api/… route also answers under /ajax-api/….
"""

from django.urls import path

from . import mlflow_protocol as views
from .otlp_views import otlp_traces


def twins(route: str, view, name: str) -> list:
    return [
        path(f"api/{route}", view, name=name),
        path(f"ajax-api/{route}", view, name=f"ajax-{name}"),
    ]


TRACES = "3.0/mlflow/traces"

urlpatterns = [
    path("v1/traces", otlp_traces, name="otlp_traces"),
    *twins(TRACES, views.start_trace, "mlflow_start_trace"),
    *twins(f"{TRACES}/search", views.search_traces, "mlflow_search_traces"),
    *twins(f"{TRACES}/get", views.get_trace, "mlflow_get_trace"),
    *twins(f"{TRACES}/batchGet", views.batch_get_traces, "mlflow_batch_get_traces"),
    *twins(
        f"{TRACES}/batchGetInfos",
        views.batch_get_trace_infos,
        "mlflow_batch_get_trace_infos",
    ),
    *twins(f"{TRACES}/<str:trace_id>", views.get_trace_info, "mlflow_get_trace_info"),
    *twins(
        f"{TRACES}/<str:trace_id>/assessments",
        views.create_assessment,
        "mlflow_create_assessment",
    ),
    *twins(
        f"{TRACES}/<str:trace_id>/assessments/<str:assessment_id>",
        views.assessment_detail,
        "mlflow_assessment_detail",
    ),
    *twins(
        "2.0/mlflow-artifacts/artifacts/<str:experiment_id>/traces/<str:trace_id>/artifacts/<path:path>",
        views.trace_artifact,
        "mlflow_trace_artifact",
    ),
]
