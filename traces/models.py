"""Experiments, their traces and spans, and who may see them (memberships, API keys)."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

from feedbackhub.encoders import FloatPreservingJSONEncoder
from feedbackhub.values import StoredJSONDecoder

TRACE_ID_RE = re.compile(r"^tr-[0-9a-f]{32}$")
SPAN_ID_RE = re.compile(r"^[0-9a-f]{16}$")

validate_trace_id = RegexValidator(TRACE_ID_RE, "A trace id is 'tr-' followed by 32 lowercase hex digits.")
validate_span_id = RegexValidator(SPAN_ID_RE, "A span id is 16 lowercase hex digits.")


def time_ordered_hex(millis: int | None = None) -> str:
    """32 hex digits: 48 bits of Unix milliseconds, then 80 random bits (UUIDv7's layout).

    Ids made of it sort by creation time, so the b-tree indexes on them grow at their right
    edge instead of taking each insert at a random leaf: at millions of rows that is the
    difference between a page already in memory and one read from disk per index.
    """
    if millis is None:
        millis = time.time_ns() // 1_000_000
    return f"{millis:012x}{secrets.randbits(80):020x}"


def new_trace_id() -> str:
    return "tr-" + time_ordered_hex()


class Experiment(models.Model):
    """A container of traces (MLflow's experiment, Langfuse's project)."""

    name = models.CharField(max_length=250, unique=True)
    description = models.TextField(blank=True)
    # Every feedback/expectation name must have a definition (assessments.definitions).
    require_definitions = models.BooleanField(default=False)
    # Changes (to a random value) with every definition change: workers compare it with the one
    # their cached definitions were read at (assessments.definitions.cache).
    definitions_stamp = models.BigIntegerField(default=0, editable=False)
    # The name the reviewer's one-key thumbs (u/d on the trace page) write: the reviewers' own
    # verdict, never end users' or judges' series.
    verdict_name = models.CharField(max_length=250, default="reviewer_verdict")
    # Traces older than this many days are purged (`manage.py purge`); null keeps them forever.
    retention_days = models.PositiveIntegerField(null=True, blank=True)
    # The purge keeps traces that carry human feedback.
    retention_keep_human = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("traces:trace_list", args=[self.pk])


class Membership(models.Model):
    """A user's role in one experiment; staff users see every experiment without one."""

    class Role(models.TextChoices):
        VIEWER = "viewer", "Viewer"
        REVIEWER = "reviewer", "Reviewer"
        OWNER = "owner", "Owner"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.REVIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "experiment"], name="membership_unique_user_experiment")]

    def __str__(self):
        return f"{self.user} is {self.role} of {self.experiment}"


class ApiKey(models.Model):
    """A secret an app sends as `Authorization: Bearer <key>`.

    Only the SHA-256 of the key is stored: keys are 256-bit random strings, so a
    fast hash is enough (a slow password hash would cost every API request).
    """

    PREFIX = "fh_"

    label = models.CharField(max_length=200, blank=True)
    prefix = models.CharField(max_length=16, help_text="First characters of the key, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    experiments = models.ManyToManyField(Experiment, related_name="api_keys")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self):
        return f"{self.label or 'key'} ({self.prefix}…)"

    @staticmethod
    def hash(raw_key: str) -> str:
        return hashlib.sha256(raw_key.encode()).hexdigest()

    @classmethod
    def generate(cls) -> str:
        return cls.PREFIX + secrets.token_urlsafe(32)

    @property
    def is_active(self) -> bool:
        """False once revoked_at has passed; a future revoked_at is a rotated key's grace period."""
        return self.revoked_at is None or self.revoked_at > timezone.now()


# The mlflow client announces how many spans a trace has in this metadata key.
META_SIZE_STATS = "mlflow.trace.sizeStats"


class Trace(models.Model):
    """One request through a GenAI app; `trace_id` is `tr-` + the 128-bit OTel trace id in hex."""

    class State(models.TextChoices):
        OK = "OK"
        ERROR = "ERROR"
        IN_PROGRESS = "IN_PROGRESS"
        UNSPECIFIED = "STATE_UNSPECIFIED"

    trace_id = models.CharField(primary_key=True, max_length=35, validators=[validate_trace_id])
    # No index of its own: trace_exp_time leads with the experiment.
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="traces", db_index=False)
    name = models.CharField(max_length=250, blank=True)
    request_time = models.DateTimeField()
    execution_time_ms = models.BigIntegerField(null=True, blank=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.OK)
    request_preview = models.TextField(blank=True)
    response_preview = models.TextField(blank=True)
    client_request_id = models.CharField(max_length=250, null=True, blank=True)
    tags = models.JSONField(default=dict, blank=True, decoder=StoredJSONDecoder)
    metadata = models.JSONField(default=dict, blank=True, decoder=StoredJSONDecoder)
    session_id = models.CharField(max_length=250, blank=True)
    user_id = models.CharField(max_length=250, blank=True)
    span_count = models.PositiveIntegerField(default=0)
    # LLM token usage and cost (USD) of the whole trace, derived from its spans (traces.usage);
    # null when no span carries any. The filter language and the lists filter and sort by them.
    total_tokens = models.BigIntegerField(null=True, blank=True)
    cost = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            # trace list and API search: newest first per experiment, keyset on (time, id)
            models.Index(fields=["experiment", "-request_time", "trace_id"], name="trace_exp_time"),
            # trace list sorted by duration
            models.Index(fields=["experiment", "-execution_time_ms", "trace_id"], name="trace_exp_duration"),
            # status filter
            models.Index(fields=["experiment", "state", "-request_time"], name="trace_exp_state_time"),
            # MLflow client_request_id lookups and idempotent retries (most traces have none)
            models.Index(
                fields=["client_request_id"],
                condition=models.Q(client_request_id__isnull=False),
                name="trace_client_request_id",
            ),
            models.Index(fields=["experiment", "session_id"], name="trace_exp_session"),
        ]

    def __str__(self):
        return self.trace_id

    def get_absolute_url(self):
        return reverse("traces:trace_detail", args=[self.trace_id])

    @property
    def expected_span_count(self) -> int | None:
        """num_spans from the mlflow client's `mlflow.trace.sizeStats` metadata, when it sent one."""
        try:
            count = json.loads(self.metadata.get(META_SIZE_STATS) or "null")["num_spans"]
        except (ValueError, TypeError, KeyError):
            return None
        return count if isinstance(count, int) and count >= 0 else None

    @property
    def spans_complete(self) -> bool:
        """Every span the client announced has arrived (always true when it announced none)."""
        expected = self.expected_span_count
        return expected is None or self.span_count >= expected


class SpanQuerySet(models.QuerySet):
    def of_trace(self, trace: Trace) -> SpanQuerySet:
        """The trace's spans. Naming its request_time too lets PostgreSQL read the one partition
        that holds them (traces/partitions.py) instead of probing every month's."""
        return self.filter(trace_id=trace.pk, trace_request_time=trace.request_time)


class Span(models.Model):
    """One step of a trace. Times are nanoseconds since the epoch, as OpenTelemetry sends them."""

    class StatusCode(models.TextChoices):
        UNSET = "UNSET"
        OK = "OK"
        ERROR = "ERROR"

    # No index of its own: span_unique_trace_span_id leads with the trace.
    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="spans", db_index=False)
    span_id = models.CharField(max_length=16, validators=[validate_span_id])
    parent_span_id = models.CharField(max_length=16, null=True, blank=True)
    name = models.CharField(max_length=250, blank=True)
    span_type = models.CharField(max_length=50, default="UNKNOWN")
    kind = models.CharField(max_length=30, blank=True)
    start_time_ns = models.BigIntegerField()
    end_time_ns = models.BigIntegerField(null=True, blank=True)
    status_code = models.CharField(max_length=10, choices=StatusCode.choices, default=StatusCode.UNSET)
    status_message = models.TextField(blank=True)
    inputs = models.JSONField(null=True, blank=True, encoder=FloatPreservingJSONEncoder, decoder=StoredJSONDecoder)
    outputs = models.JSONField(null=True, blank=True, encoder=FloatPreservingJSONEncoder, decoder=StoredJSONDecoder)
    attributes = models.JSONField(default=dict, blank=True, decoder=StoredJSONDecoder)
    events = models.JSONField(default=list, blank=True, decoder=StoredJSONDecoder)
    # The trace's request_time, copied: on PostgreSQL the table is partitioned by month of it
    # (traces/partitions.py), so a trace's spans share one partition and retention drops whole
    # months. The ingest service keeps it equal to the trace's (traces.services._merge).
    trace_request_time = models.DateTimeField()

    objects = SpanQuerySet.as_manager()

    class Meta:
        # A partitioned table's unique keys must hold the partition key; one value per trace
        # makes this the (trace, span_id) uniqueness it always was.
        constraints = [
            models.UniqueConstraint(fields=["trace", "span_id", "trace_request_time"], name="span_unique_trace_span_id")
        ]
        indexes = [
            # span.name / span.type filters
            models.Index(fields=["name"], name="span_name"),
            models.Index(fields=["span_type"], name="span_type"),
        ]

    def __str__(self):
        return f"{self.name} ({self.span_id})"

    @property
    def duration_ms(self) -> float | None:
        if self.end_time_ns is None:
            return None
        return (self.end_time_ns - self.start_time_ns) / 1e6


# Choices' .values is rebuilt on every access; the per-span checks use these.
SPAN_STATUS_CODES = frozenset(Span.StatusCode.values)
TRACE_STATES = frozenset(Trace.State.values)


RUN_ID_RE = re.compile(r"^[0-9a-f]{32}$")


def new_run_id() -> str:
    return time_ordered_hex()


class Run(models.Model):
    """An MLflow run: how `mlflow.genai.evaluate` records one evaluation (docs/mlflow-runs.md).

    Metrics keep every logged value (`[{"key", "value", "timestamp", "step"}]`), params and
    tags are string maps, inputs the logged dataset inputs; the run's traces are those whose
    metadata `mlflow.sourceRun` names it plus those linked to it (RunTrace).
    """

    class Status(models.TextChoices):
        RUNNING = "RUNNING"
        SCHEDULED = "SCHEDULED"
        FINISHED = "FINISHED"
        FAILED = "FAILED"
        KILLED = "KILLED"

    run_id = models.CharField(primary_key=True, max_length=32, default=new_run_id)
    # No index of its own: run_exp_start leads with the experiment.
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="runs", db_index=False)
    name = models.CharField(max_length=250, blank=True)
    user_id = models.CharField(max_length=250, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    start_time_ms = models.BigIntegerField(null=True, blank=True)
    end_time_ms = models.BigIntegerField(null=True, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    params = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=list, blank=True, encoder=FloatPreservingJSONEncoder)
    inputs = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            # the experiment's runs page and SearchRuns: newest first
            models.Index(fields=["experiment", "-created_at", "run_id"], name="run_exp_created"),
        ]

    def __str__(self):
        return self.name or self.run_id

    def get_absolute_url(self):
        return reverse("traces:run_detail", args=[self.run_id])

    @property
    def latest_metrics(self) -> dict[str, dict]:
        """The last value logged per metric key (highest step, then timestamp), as MLflow reports them."""
        latest: dict[str, dict] = {}
        for metric in self.metrics:
            current = latest.get(metric["key"])
            if current is None or (metric["step"], metric["timestamp"]) >= (current["step"], current["timestamp"]):
                latest[metric["key"]] = metric
        return latest


class RunTrace(models.Model):
    """A trace linked to a run (MLflow's LinkTracesToRun): `mlflow traces evaluate` scores existing
    traces and links them to its run instead of changing their metadata."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="trace_links", db_index=False)
    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="run_links")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "trace"], name="runtrace_unique_run_trace")]

    def __str__(self):
        return f"{self.trace_id} in run {self.run_id}"


class TraceDeletion(models.Model):
    """Who deleted which traces, when and how: the audit row of every trace deletion.

    Deleting a trace removes its spans, assessments, their revisions and held feedback for it,
    so this row is what remains; it keeps plain copies of the ids, not foreign keys.
    """

    experiment_id = models.BigIntegerField()
    trace_ids = models.JSONField(default=list)
    trace_count = models.PositiveIntegerField()
    # {"spans": n, "assessments": n, "revisions": n, "held": n}
    removed = models.JSONField(default=dict)
    # what the caller asked for: {"trace_ids": [...]} or {"max_timestamp_millis": n, "max_traces": n}
    criteria = models.JSONField(default=dict)
    channel = models.CharField(max_length=10)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    actor_label = models.CharField(max_length=250)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.actor_label} deleted {self.trace_count} trace(s) of experiment {self.experiment_id}"
