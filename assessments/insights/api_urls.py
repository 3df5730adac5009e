from django.urls import path

from . import api

urlpatterns = [
    path("experiments/<str:experiment_id>/metrics", api.MetricsApi.as_view(), name="api_experiment_metrics"),
]
