"""The definitions pages of an experiment."""

from django.urls import path

from . import views

app_name = "definitions"
urlpatterns = [
    path("experiments/<int:experiment_id>/definitions/", views.definition_list, name="definition_list"),
    path("experiments/<int:experiment_id>/definitions/propose/", views.definition_propose, name="definition_propose"),
    path("experiments/<int:experiment_id>/definitions/require/", views.require_definitions, name="require_definitions"),
    path("experiments/<int:experiment_id>/definitions/verdict/", views.verdict_setting, name="verdict_setting"),
    path("experiments/<int:experiment_id>/definitions/<str:name>/edit/", views.definition_edit, name="definition_edit"),
    path(
        "experiments/<int:experiment_id>/definitions/<str:name>/archive/",
        views.definition_archive,
        name="definition_archive",
    ),
    path(
        "experiments/<int:experiment_id>/definitions/<str:name>/versions/",
        views.definition_versions,
        name="definition_versions",
    ),
]
