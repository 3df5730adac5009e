"""MLflow's trace metrics route; included before assessments.mlflow_urls, whose
`traces/<trace_id>` would otherwise take `metrics` for a trace id."""

from django.urls import path

from .mlflow_metrics import query_trace_metrics

urlpatterns = [
    path("api/3.0/mlflow/traces/metrics", query_trace_metrics, name="mlflow_query_trace_metrics"),
    path("ajax-api/3.0/mlflow/traces/metrics", query_trace_metrics, name="ajax-mlflow_query_trace_metrics"),
]
