"""Evaluation datasets of an experiment: a draft of records, published as numbered versions.

A record copies a trace's request (`inputs`), its valid expectations by name and optionally
its output, and keeps its provenance in `source`: the trace id, and for each expectation the
assessment id and the revision (assessment version and revision row) it was taken at. A
published version's records are copies that are never changed or deleted (only with their
dataset). Rows are written only by `assessments.datasets.services`.
"""

import secrets

from django.db import models

from traces.models import Experiment


def new_dataset_id() -> str:
    return f"d-{secrets.token_hex(16)}"


def new_record_id() -> str:
    return f"dr-{secrets.token_hex(16)}"


class SourceType(models.TextChoices):
    """Where a record came from (MLflow's DatasetRecordSourceType)."""

    TRACE = "TRACE", "Trace"
    HUMAN = "HUMAN", "Human"
    DOCUMENT = "DOCUMENT", "Document"
    CODE = "CODE", "Code"
    UNSPECIFIED = "UNSPECIFIED", "Unspecified"


class Dataset(models.Model):
    dataset_id = models.CharField(primary_key=True, max_length=35, default=new_dataset_id)
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="+", db_index=False)
    name = models.CharField(max_length=250)
    description = models.TextField(blank=True)
    tags = models.JSONField(default=dict, blank=True)
    # The number of the latest published version (0: never published).
    current_version = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    created_by = models.CharField(max_length=250, blank=True, help_text="Who created it (actor label).")
    updated_by = models.CharField(max_length=250, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            # also the index of the experiment's dataset list
            models.UniqueConstraint(fields=["experiment", "name"], name="dataset_unique_experiment_name"),
        ]

    def __str__(self):
        return self.name


class RecordFields(models.Model):
    """What a draft record and a published copy share."""

    inputs = models.JSONField(default=dict)
    expectations = models.JSONField(default=dict, blank=True)
    outputs = models.JSONField(null=True, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    source_type = models.CharField(max_length=12, choices=SourceType.choices, default=SourceType.UNSPECIFIED)
    # {"trace_id", "session_id"?, "expectations": {name: {"assessment_id", "version", "revision_id"}}}
    # for trace records; the client's source_data otherwise.
    source = models.JSONField(default=dict, blank=True)
    # The trace the record came from: retention keeps it (selectors.pinned_trace_ids).
    source_trace_id = models.CharField(max_length=35, null=True, blank=True)

    class Meta:
        abstract = True


class DatasetRecord(RecordFields):
    """A record of the draft (the next version): added, edited and removed freely."""

    record_id = models.CharField(primary_key=True, max_length=36, default=new_record_id)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="records", db_index=False)
    # sha256 of the canonical inputs JSON: MLflow's merge_records upserts by inputs.
    inputs_key = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    created_by = models.CharField(max_length=250, blank=True)
    updated_by = models.CharField(max_length=250, blank=True)

    class Meta:
        ordering = ["created_at", "record_id"]
        indexes = [
            # the draft's records in order (dataset page, API, MLflow GetDatasetRecords)
            models.Index(fields=["dataset", "created_at", "record_id"], name="datasetrecord_order"),
            # MLflow's upsert by inputs
            models.Index(fields=["dataset", "inputs_key"], name="datasetrecord_inputs"),
            # retention's pinned traces
            models.Index(fields=["source_trace_id"], name="datasetrecord_trace"),
        ]
        constraints = [
            # adding a trace twice refreshes its record
            models.UniqueConstraint(
                fields=["dataset", "source_trace_id"],
                condition=models.Q(source_trace_id__isnull=False),
                name="datasetrecord_unique_trace",
            ),
        ]

    def __str__(self):
        return self.record_id


class DatasetVersion(models.Model):
    """A published, immutable version of a dataset."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="versions", db_index=False)
    version = models.PositiveIntegerField()
    note = models.CharField(max_length=500, blank=True)
    record_count = models.PositiveIntegerField()
    created_at = models.DateTimeField()
    created_by = models.CharField(max_length=250, blank=True)

    class Meta:
        ordering = ["dataset", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "version"], name="datasetversion_unique_version"),
        ]

    def __str__(self):
        return f"{self.dataset_id} v{self.version}"


class ImmutableError(Exception):
    """A published version's records are never changed."""


class DatasetVersionRecord(RecordFields):
    """A record as it was when its version was published; never changed."""

    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="records", db_index=False)
    # the draft record it was copied from (the key of a diff between versions)
    record_id = models.CharField(max_length=36)
    position = models.PositiveIntegerField()

    class Meta:
        ordering = ["version", "position"]
        constraints = [
            # also the order of a version's export
            models.UniqueConstraint(fields=["version", "position"], name="datasetversionrecord_position"),
        ]
        indexes = [models.Index(fields=["source_trace_id"], name="datasetversionrecord_trace")]

    def __str__(self):
        return f"{self.record_id} (v{self.version_id})"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ImmutableError("A published version's records never change.")
        super().save(*args, **kwargs)
