"""The agreement page of an experiment."""

from django.urls import path

from . import views

app_name = "agreement"
urlpatterns = [
    path("experiments/<int:experiment_id>/insights/agreement/", views.agreement_page, name="agreement"),
]
