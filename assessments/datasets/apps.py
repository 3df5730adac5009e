from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    """Evaluation datasets: records copied from reviewed traces, published as immutable versions."""

    name = "assessments.datasets"
    label = "datasets"
    verbose_name = "Evaluation datasets"
    default_auto_field = "django.db.models.BigAutoField"
