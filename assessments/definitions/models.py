"""Feedback definitions: a typed, versioned rubric per experiment and assessment name.

Rows are written only by `assessments.definitions.services`. Imported by
`assessments.models`, so the models belong to the assessments app.
"""

from django.conf import settings
from django.db import models

from traces.models import ApiKey, Experiment


class Definition(models.Model):
    """What an assessment name means in one experiment; its rules live in its versions."""

    class Kind(models.TextChoices):
        FEEDBACK = "feedback", "Feedback"
        EXPECTATION = "expectation", "Expectation"

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="definitions", db_index=False)
    name = models.CharField(max_length=250)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.FEEDBACK)
    # The version enforced now (the highest); archived definitions are enforced no more.
    current_version = models.PositiveIntegerField(default=1)
    archived_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]
        constraints = [
            # also the index of the definitions page and of the per-worker cache's load
            models.UniqueConstraint(fields=["experiment", "name"], name="definition_unique_experiment_name"),
        ]

    def __str__(self):
        return f"{self.name} (v{self.current_version})"

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None


class DefinitionVersion(models.Model):
    """One version of a definition: never changed once written (a change is a new version)."""

    class Type(models.TextChoices):
        BOOLEAN = "boolean", "Boolean"
        NUMBER = "number", "Number"
        CATEGORY = "category", "Category"
        TEXT = "text", "Text"
        JSON = "json", "JSON"

    definition = models.ForeignKey(Definition, on_delete=models.CASCADE, related_name="versions", db_index=False)
    version = models.PositiveIntegerField()
    type = models.CharField(max_length=10, choices=Type.choices)
    # The type's constraints (min, max, integer, levels / options, multiple / max_length /
    # json_schema), as assessments.definitions.rules.clean_constraints leaves them.
    constraints = models.JSONField(default=dict, blank=True)
    description = models.TextField(blank=True, help_text="Instructions for reviewers.")
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    created_by_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    actor_label = models.CharField(max_length=250, blank=True, help_text="Who wrote this version.")

    class Meta:
        ordering = ["definition", "version"]
        constraints = [
            # the versions list and the lookup of the current version
            models.UniqueConstraint(fields=["definition", "version"], name="definitionversion_unique_version"),
        ]

    def __str__(self):
        return f"{self.definition.name} (v{self.version})"
