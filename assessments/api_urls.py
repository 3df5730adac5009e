from django.urls import path

from . import api

urlpatterns = [
    path("traces/<str:trace_id>", api.TraceDetailApi.as_view(), name="api_trace_detail"),
    path("traces/<str:trace_id>/feedback", api.FeedbackCreateApi.as_view(), name="api_feedback_create"),
    path("traces/<str:trace_id>/expectations", api.ExpectationCreateApi.as_view(), name="api_expectation_create"),
    path("traces/<str:trace_id>/assessments", api.TraceAssessmentListApi.as_view(), name="api_trace_assessments"),
    path("assessments/<str:assessment_id>", api.AssessmentDetailApi.as_view(), name="api_assessment_detail"),
    path("assessments/<str:assessment_id>/override", api.AssessmentOverrideApi.as_view(), name="api_assessment_override"),
    path("assessments/<str:assessment_id>/history", api.AssessmentHistoryApi.as_view(), name="api_assessment_history"),
]
