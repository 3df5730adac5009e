"""The MLflow REST protocol's server endpoints: `/version`, `/health`, server-info, and the JSON
ENDPOINT_NOT_FOUND for every MLflow route FeedbackHub does not implement."""

from django.http import HttpResponse

from .mlflow_protocol import MLFLOW_VERSION, MlflowError, json_response, mlflow_endpoint


def version(request):
    """GET /version: the MLflow version the client negotiates with (>= 3.4 turns on OTLP spans)."""
    return HttpResponse(MLFLOW_VERSION, content_type="text/plain; charset=utf-8")


def health(request):
    return HttpResponse("OK", content_type="text/plain; charset=utf-8")


@mlflow_endpoint("GET", auth=False, body=False)
def server_info(request, message, actor):
    return json_response(
        {
            "store_type": "SqlStore",
            "workspaces_enabled": False,
            "trace_archival_enabled": False,
            "multipart_uploads_enabled": False,
            "multipart_downloads_enabled": False,
            "artifact_serving_enabled": True,
            "artifacts_presigned_only": False,
        }
    )


@mlflow_endpoint("GET", "POST", "PUT", "PATCH", "DELETE", auth=False, body=False)
def endpoint_not_found(request, message, actor, rest=""):
    """JSON ENDPOINT_NOT_FOUND for MLflow routes FeedbackHub does not implement; the client
    falls back to older endpoints on this code, and a person reading it learns why."""
    raise MlflowError("ENDPOINT_NOT_FOUND", f"FeedbackHub does not implement {request.method} {request.path}.")
