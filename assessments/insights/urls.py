"""The insights page of an experiment and its panels."""

from django.urls import path

from . import views

app_name = "insights"
urlpatterns = [
    path("experiments/<int:experiment_id>/insights/", views.insights, name="insights"),
    path("experiments/<int:experiment_id>/insights/panels/cards/", views.cards_panel, name="cards"),
    path("experiments/<int:experiment_id>/insights/panels/trends/", views.trends_panel, name="trends"),
    path("experiments/<int:experiment_id>/insights/panels/breakdown/", views.breakdown_panel, name="breakdown"),
]
