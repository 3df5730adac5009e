from django.apps import AppConfig


class RetentionConfig(AppConfig):
    name = "assessments.retention"
    label = "retention"
    verbose_name = "Retention"
