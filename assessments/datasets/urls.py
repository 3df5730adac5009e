"""The dataset pages."""

from django.urls import path

from . import views

app_name = "datasets"
urlpatterns = [
    path("experiments/<int:experiment_id>/datasets/", views.dataset_list, name="dataset_list"),
    path("experiments/<int:experiment_id>/datasets/add-selected/", views.add_selected, name="add_selected"),
    path("datasets/<str:dataset_id>/", views.dataset_detail, name="dataset_detail"),
    path("datasets/<str:dataset_id>/records/add/", views.records_add, name="records_add"),
    path("datasets/<str:dataset_id>/records/<str:record_id>/edit/", views.record_edit, name="record_edit"),
    path("datasets/<str:dataset_id>/records/<str:record_id>/delete/", views.record_delete, name="record_delete"),
    path("datasets/<str:dataset_id>/publish/", views.publish, name="publish"),
    path("datasets/<str:dataset_id>/delete/", views.dataset_delete, name="dataset_delete"),
    path("datasets/<str:dataset_id>/versions/<int:number>/", views.version_detail, name="version_detail"),
    path("datasets/<str:dataset_id>/diff/", views.diff, name="diff"),
]
