from django.apps import AppConfig


class InsightsConfig(AppConfig):
    name = "assessments.insights"
    label = "insights"
    verbose_name = "Insights"
