from django.urls import path

from . import api, batch_api, experiment_api, public_api

urlpatterns = [
    path("experiments/<str:experiment_id>", experiment_api.ExperimentDetailApi.as_view(), name="api_experiment_detail"),
    path("traces/<str:trace_id>", api.TraceDetailApi.as_view(), name="api_trace_detail"),
    path(
        "traces/<str:trace_id>/feedback",
        api.FeedbackCreateApi.as_view(),
        name="api_feedback_create",
    ),
    path(
        "traces/<str:trace_id>/expectations",
        api.ExpectationCreateApi.as_view(),
        name="api_expectation_create",
    ),
    path(
        "traces/<str:trace_id>/assessments",
        api.TraceAssessmentListApi.as_view(),
        name="api_trace_assessments",
    ),
    path(
        "assessments/<str:assessment_id>",
        api.AssessmentDetailApi.as_view(),
        name="api_assessment_detail",
    ),
    path(
        "assessments/<str:assessment_id>/override",
        api.AssessmentOverrideApi.as_view(),
        name="api_assessment_override",
    ),
    path(
        "assessments/<str:assessment_id>/history",
        api.AssessmentHistoryApi.as_view(),
        name="api_assessment_history",
    ),
    path(
        "feedback:batch",
        batch_api.FeedbackBatchApi.as_view(),
        name="api_feedback_batch",
    ),
    # End-user feedback: the app asks for a token, the browser posts with it (assessments.public_api).
    path(
        "traces/<str:trace_id>/feedback-tokens",
        public_api.FeedbackTokenCreateApi.as_view(),
        name="api_feedback_token_create",
    ),
    path(
        "public/feedback",
        public_api.PublicFeedbackApi.as_view(),
        name="api_public_feedback",
    ),
]
