from django.urls import path

from . import api

urlpatterns = [
    path("experiments/<str:experiment_id>/agreement", api.AgreementApi.as_view(), name="api_agreement"),
    path(
        "experiments/<str:experiment_id>/reviewer-agreement",
        api.ReviewerAgreementApi.as_view(),
        name="api_reviewer_agreement",
    ),
]
