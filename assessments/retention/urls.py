"""The retention page of an experiment."""

from django.urls import path

from . import views

app_name = "retention"
urlpatterns = [
    path("experiments/<int:experiment_id>/retention/", views.retention, name="retention"),
]
