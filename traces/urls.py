"""Reviewer pages of the traces app (HTML + HTMX fragments)."""

from django.urls import path

from . import run_views, views

app_name = "traces"
urlpatterns = [
    path("", views.home, name="home"),
    path("experiments/<int:experiment_id>/traces/", views.trace_list, name="trace_list"),
    path("experiments/<int:experiment_id>/runs/", run_views.run_list, name="run_list"),
    path("runs/<str:run_id>/", run_views.run_detail, name="run_detail"),
    path("traces/<str:trace_id>/", views.trace_detail, name="trace_detail"),
    path("traces/<str:trace_id>/summary/", views.trace_summary, name="trace_summary"),
    path("traces/<str:trace_id>/spans/<str:span_id>/", views.span_detail, name="span_detail"),
]
