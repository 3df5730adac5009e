"""Root URLs: pages, admin, the native API, its schema and docs, health checks."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from . import views

handler500 = "feedbackhub.views.server_error"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("accounts/login/", views.login, name="login"),  # brute-force protected (feedbackhub.security)
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/v1/", include("traces.api_urls")),
    path("api/v1/", include("assessments.api_urls")),
    path("api/v1/", include("assessments.definitions.api_urls")),
    path("api/v1/", include("assessments.queues.api_urls")),
    path("api/v1/", include("assessments.insights.api_urls")),
    path("api/v1/", include("assessments.agreement.api_urls")),
    path("api/v1/", include("assessments.datasets.api_urls")),
    path("api/v1/", include("assessments.exports.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its script as a file, so CSP script-src 'self' holds.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    # MLflow protocol (/version, /health, /api/{2,3}.0/mlflow/…, /ajax-api/…) and OTLP /v1/traces;
    # assessments first: traces.mlflow_urls ends with the ENDPOINT_NOT_FOUND catch-all.
    path("", include("assessments.insights.mlflow_urls")),
    path("", include("assessments.mlflow_urls")),
    path("", include("assessments.datasets.mlflow_urls")),
    path("", include("assessments.trace_deletion_urls")),
    path("", include("traces.mlflow_run_urls")),
    path("", include("traces.mlflow_urls")),
    path("", include("assessments.urls")),
    path("", include("assessments.definitions.urls")),
    path("", include("assessments.queues.urls")),
    path("", include("assessments.insights.urls")),
    path("", include("assessments.agreement.urls")),
    path("", include("assessments.datasets.urls")),
    path("", include("assessments.retention.urls")),
    path("", include("traces.urls")),
]
