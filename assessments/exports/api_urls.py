from django.urls import path

from . import api

urlpatterns = [
    path("experiments/<str:experiment_id>/export", api.ExportApi.as_view(), name="api_experiment_export"),
]
