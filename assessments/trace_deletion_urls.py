"""MLflow's DeleteTraces route (assessments.mlflow_trace_deletion); the client uses the 2.0 path.

Included by `feedbackhub/urls.py` before `traces.mlflow_urls`, whose catch-all answers
ENDPOINT_NOT_FOUND. Every /api/… route also answers under /ajax-api/….
"""

from django.urls import path

from .mlflow_trace_deletion import delete_traces

urlpatterns = [
    path("api/2.0/mlflow/traces/delete-traces", delete_traces, name="mlflow_delete_traces"),
    path("ajax-api/2.0/mlflow/traces/delete-traces", delete_traces, name="ajax-mlflow_delete_traces"),
]
