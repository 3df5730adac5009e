from django.urls import path

from . import api

urlpatterns = [
    path("experiments", api.ExperimentListApi.as_view(), name="api_experiments"),
    path("traces", api.TraceListApi.as_view(), name="api_traces"),
]
