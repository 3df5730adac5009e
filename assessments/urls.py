"""The assessments panel's endpoints (HTML forms upgraded by htmx)."""

from django.urls import path

from . import trace_deletion_views, views

app_name = "assessments"
urlpatterns = [
    path("traces/<str:trace_id>/delete/", trace_deletion_views.trace_delete, name="trace_delete"),
    path(
        "traces/<str:trace_id>/assessments/",
        views.assessment_panel,
        name="assessment_panel",
    ),
    path(
        "traces/<str:trace_id>/feedback/new/",
        views.feedback_create,
        name="feedback_create",
    ),
    path(
        "traces/<str:trace_id>/feedback/thumb/",
        views.feedback_thumb,
        name="feedback_thumb",
    ),
    path(
        "traces/<str:trace_id>/expectations/new/",
        views.expectation_create,
        name="expectation_create",
    ),
    path(
        "assessments/<str:assessment_id>/edit/",
        views.assessment_update,
        name="assessment_update",
    ),
    path(
        "assessments/<str:assessment_id>/override/",
        views.assessment_override,
        name="assessment_override",
    ),
    path(
        "assessments/<str:assessment_id>/delete/",
        views.assessment_delete,
        name="assessment_delete",
    ),
    path(
        "assessments/<str:assessment_id>/history/",
        views.assessment_history,
        name="assessment_history",
    ),
]
