"""Assessments (feedback and expectations) and their revision history.

Rows are written only by `assessments.services`.
"""

import math

from django.conf import settings
from django.db import models

from feedbackhub.encoders import FloatPreservingJSONEncoder
from feedbackhub.values import StoredJSONDecoder
from traces.models import ApiKey, Experiment, Trace, time_ordered_hex

from .definitions.models import Definition, DefinitionVersion

__all__ = ["Assessment", "Definition", "DefinitionVersion", "PendingAssessment", "Revision"]


def new_assessment_id() -> str:
    return "a-" + time_ordered_hex()


def numeric_projection(value) -> float | None:
    """The value as a float for filters and aggregates: numbers as is, booleans 1/0, else None."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:  # an integer beyond float range has no projection
            return None
        return number if math.isfinite(number) else None
    return None


class Assessment(models.Model):
    """A judgement (feedback) or a ground truth (expectation) on a trace or one of its spans."""

    class Kind(models.TextChoices):
        FEEDBACK = "feedback", "Feedback"
        EXPECTATION = "expectation", "Expectation"

    class SourceType(models.TextChoices):
        HUMAN = "HUMAN", "Human"
        LLM_JUDGE = "LLM_JUDGE", "LLM judge"
        CODE = "CODE", "Code"

    assessment_id = models.CharField(primary_key=True, max_length=50, default=new_assessment_id)
    # Trace and experiment need no index of their own: the composite indexes below lead with them.
    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="assessments", db_index=False)
    # Denormalised from the trace: experiment summaries and filters skip the join.
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="+", db_index=False)
    span_id = models.CharField(max_length=16, null=True, blank=True)
    name = models.CharField(max_length=250)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.FEEDBACK)
    value = models.JSONField(null=True, blank=True, encoder=FloatPreservingJSONEncoder, decoder=StoredJSONDecoder)
    numeric_value = models.FloatField(null=True, blank=True, editable=False)
    error = models.JSONField(null=True, blank=True, decoder=StoredJSONDecoder)
    rationale = models.TextField(blank=True)
    source_type = models.CharField(max_length=20, choices=SourceType.choices, default=SourceType.HUMAN)
    source_id = models.CharField(max_length=250, blank=True)
    metadata = models.JSONField(default=dict, blank=True, decoder=StoredJSONDecoder)
    overrides = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="overridden_by",
        db_index=False,  # assessment_overrides, partial: few assessments override another
    )
    valid = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=1)
    # The version of the experiment's definition of this name the value was checked against
    # (None: written without a definition).
    definition_version = models.PositiveIntegerField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # assessment_created_by, partial: apps write without a user
    )
    # Not indexed: nothing looks assessments up by key, and every API write would pay for the
    # index. Deleting a key (keys are normally revoked, not deleted) scans the table instead.
    created_by_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    create_time = models.DateTimeField()
    last_update_time = models.DateTimeField()
    # A client's retry token: the same key in the same experiment never creates twice.
    idempotency_key = models.CharField(max_length=200, null=True, blank=True, editable=False)

    class Meta:
        ordering = ["create_time", "assessment_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="assessment_unique_idempotency_key",
            )
        ]
        indexes = [
            # a trace's assessments (sorted in memory: a trace has few) and the filter
            # language's EXISTS (valid assessment of this name on this trace)
            models.Index(fields=["trace", "name", "kind", "valid"], name="assessment_trace_name"),
            # experiment feedback summaries and numeric filters
            models.Index(
                fields=["experiment", "kind", "name", "valid", "numeric_value"],
                name="assessment_exp_name",
            ),
            # "replaced by" links and SET_NULL when the override goes
            models.Index(
                fields=["overrides"], condition=models.Q(overrides__isnull=False), name="assessment_overrides"
            ),
            # SET_NULL when a user is deleted
            models.Index(
                fields=["created_by"], condition=models.Q(created_by__isnull=False), name="assessment_created_by"
            ),
        ]

    def __str__(self):
        return f"{self.name} on {self.trace_id}"

    def save(self, *args, **kwargs):
        self.numeric_value = numeric_projection(self.value)
        if kwargs.get("update_fields") is not None and "value" in kwargs["update_fields"]:
            kwargs["update_fields"] = {*kwargs["update_fields"], "numeric_value"}
        super().save(*args, **kwargs)

    @property
    def value_type(self) -> str:
        """boolean, number, string, list, object, error or none; drives how the value is shown."""
        value = self.value
        if isinstance(value, bool):
            return "boolean"
        if isinstance(value, (int, float)):
            return "number"
        if isinstance(value, str):
            return "string"
        if isinstance(value, list):
            return "list"
        if isinstance(value, dict):
            return "object"
        return "error" if self.error else "none"

    def snapshot(self) -> dict:
        """The editable state of the row, as stored in revision before/after."""
        return {field: self.overrides_id if field == "overrides" else getattr(self, field) for field in SNAPSHOT_FIELDS}


# The keys of a revision's before/after, in the order the history shows changes (jsonb
# does not keep key order, so the order comes from here).
SNAPSHOT_FIELDS = (
    "name",
    "kind",
    "value",
    "error",
    "rationale",
    "metadata",
    "source_type",
    "source_id",
    "span_id",
    "overrides",
    "valid",
    "version",
)


class Revision(models.Model):
    """One change to an assessment. Never edited; survives the deletion of its assessment."""

    class Action(models.TextChoices):
        CREATE = "create"
        UPDATE = "update"
        OVERRIDE = "override"
        DELETE = "delete"
        RESTORE = "restore"
        INVALIDATE = "invalidate"

    class Channel(models.TextChoices):
        UI = "ui"
        API = "api"
        MLFLOW = "mlflow"
        OTLP = "otlp"
        ADMIN = "admin"
        PUBLIC = "public"
        QUEUE = "queue"

    # Plain copies rather than foreign keys: the history outlives the rows it describes.
    # Indexed in Meta (plain b-trees: nothing searches them with LIKE).
    assessment_id = models.CharField(max_length=50)
    # The other assessment the change touched: the one an override replaced, or the one a
    # deleted override made valid again. History pages show the revision under both.
    related_assessment_id = models.CharField(max_length=50, null=True, blank=True)
    trace_id = models.CharField(max_length=35)
    experiment_id = models.BigIntegerField(null=True)
    action = models.CharField(max_length=12, choices=Action.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # revision_actor_user, partial: apps write without a user
    )
    # Not indexed, as Assessment.created_by_key.
    actor_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    actor_label = models.CharField(max_length=250, help_text="Who acted, as shown in the history.")
    created_at = models.DateTimeField(db_index=True)
    before = models.JSONField(null=True, blank=True, decoder=StoredJSONDecoder)
    after = models.JSONField(null=True, blank=True, decoder=StoredJSONDecoder)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            # an assessment's history
            models.Index(fields=["assessment_id"], name="revision_assessment"),
            models.Index(
                fields=["related_assessment_id"],
                condition=models.Q(related_assessment_id__isnull=False),
                name="revision_related_assessment",
            ),
            # admin search by trace
            models.Index(fields=["trace_id"], name="revision_trace"),
            models.Index(
                fields=["actor_user"], condition=models.Q(actor_user__isnull=False), name="revision_actor_user"
            ),
        ]

    def __str__(self):
        return f"{self.action} {self.assessment_id} by {self.actor_label}"

    @property
    def changes(self) -> list[tuple[str, object, object]]:
        """(field, before, after) for every field that differs between the snapshots."""
        before, after = self.before or {}, self.after or {}
        keys = [key for key in SNAPSHOT_FIELDS if key != "version"]
        return [(key, before.get(key), after.get(key)) for key in keys if before.get(key) != after.get(key)]


class PendingAssessment(models.Model):
    """Feedback or an expectation for a trace id that has not arrived yet.

    Apps export traces in the background, so feedback often overtakes its trace.
    The row keeps the create call until the trace is ingested (then the services
    create the real assessment, with the same id and its revision) or until
    `expires_at` (then it is dropped with a log line).
    """

    assessment_id = models.CharField(primary_key=True, max_length=50, default=new_assessment_id)
    trace_id = models.CharField(max_length=35, db_index=True)
    kind = models.CharField(max_length=12, choices=Assessment.Kind.choices)
    # The keyword arguments of log_feedback / log_expectation, JSON-ready.
    payload = models.JSONField(decoder=StoredJSONDecoder)
    channel = models.CharField(max_length=10, choices=Revision.Channel.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    actor_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["created_at", "assessment_id"]

    def __str__(self):
        return f"pending {self.kind} {self.assessment_id} for {self.trace_id}"


class FeedbackToken(models.Model):
    """The uses of one end-user feedback token (assessments.public_api), counted here.

    The token itself is signed, not stored; this row appears at its first use. Its uses are
    counted in `uses`, not by the feedback they wrote, so a spent token stays spent when
    moderation deletes that feedback (assessments.feedback_tokens.take_use).
    """

    nonce = models.CharField(primary_key=True, max_length=64, help_text="The token's random id (claim j).")
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="+")
    trace_id = models.CharField(max_length=35)
    max_uses = models.PositiveIntegerField()
    uses = models.PositiveIntegerField(default=0)
    first_used_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"feedback token {self.nonce[:8]}… ({self.uses}/{self.max_uses} uses)"
