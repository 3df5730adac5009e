from django.urls import path

from . import api

urlpatterns = [
    path("experiments/<str:experiment_id>/datasets", api.DatasetListApi.as_view(), name="api_datasets"),
    path("datasets/<str:dataset_id>", api.DatasetDetailApi.as_view(), name="api_dataset_detail"),
    path("datasets/<str:dataset_id>/records", api.RecordsApi.as_view(), name="api_dataset_records"),
    path(
        "datasets/<str:dataset_id>/records/<str:record_id>",
        api.RecordDetailApi.as_view(),
        name="api_dataset_record_detail",
    ),
    path("datasets/<str:dataset_id>/versions", api.VersionsApi.as_view(), name="api_dataset_versions"),
    path(
        "datasets/<str:dataset_id>/versions/<str:number>/records",
        api.VersionRecordsApi.as_view(),
        name="api_dataset_version_records",
    ),
    path("datasets/<str:dataset_id>/diff", api.DiffApi.as_view(), name="api_dataset_diff"),
]
