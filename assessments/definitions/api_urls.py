from django.urls import path

from . import api

urlpatterns = [
    path(
        "experiments/<str:experiment_id>/definitions",
        api.DefinitionListApi.as_view(),
        name="api_definitions",
    ),
    path(
        "experiments/<str:experiment_id>/definitions/<str:name>",
        api.DefinitionDetailApi.as_view(),
        name="api_definition_detail",
    ),
    path(
        "experiments/<str:experiment_id>/definitions/<str:name>/versions",
        api.DefinitionVersionListApi.as_view(),
        name="api_definition_versions",
    ),
]
