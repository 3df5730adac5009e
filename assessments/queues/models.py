from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from traces.models import Experiment, Trace


class Queue(models.Model):
    """A review queue of one experiment: its questions (definition names, in order), who
    reviews, how many different reviewers each item needs, blind mode, the lease length and an
    optional rule (a filter plus a sample rate) that adds matching traces as they come."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=200)
    instructions = models.TextField(blank=True)
    # Definition names asked, in order (checked against the experiment's definitions on write).
    questions = models.JSONField(default=list)
    # Empty: every reviewer of the experiment.
    reviewers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    answers_per_item = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(10)]
    )
    blind = models.BooleanField(default=False)
    lease_seconds = models.PositiveIntegerField(
        default=600, validators=[MinValueValidator(1), MaxValueValidator(7 * 24 * 3600)]
    )
    rule_filter = models.TextField(blank=True, help_text="Traces matching this filter are added as they come.")
    rule_sample_rate = models.FloatField(default=1.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    archived_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    created_by_label = models.CharField(max_length=250, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["experiment", "archived_at"], name="queue_experiment")]

    def __str__(self):
        return self.name

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None

    @property
    def has_rule(self) -> bool:
        return bool(self.rule_filter.strip()) and self.rule_sample_rate > 0


class QueueItem(models.Model):
    """One trace in one queue. `answer_count` (different reviewers who answered) and `complete`
    are kept by the services under the item's row lock, so `next` reads them in one row."""

    class Origin(models.TextChoices):
        IDS = "ids"
        FILTER = "filter"
        RULE = "rule"

    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="items", db_index=False)
    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="+", db_index=False)
    origin = models.CharField(max_length=8, choices=Origin.choices, default=Origin.IDS)
    added_at = models.DateTimeField()
    removed_at = models.DateTimeField(null=True, blank=True)
    answer_count = models.PositiveSmallIntegerField(default=0)
    complete = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]
        constraints = [
            # adding is idempotent; also the lookup of an item by trace
            models.UniqueConstraint(fields=["queue", "trace"], name="queueitem_unique_trace"),
        ]
        indexes = [
            # `next`: the oldest open items of a queue (ordered by added_at, id: an order the
            # primary key cannot give, so the planner never walks it through completed items)
            models.Index(
                fields=["queue", "added_at", "id"],
                condition=models.Q(complete=False, removed_at__isnull=True),
                name="queueitem_open",
            ),
            # trace deletion and retention (unfinished items by trace)
            models.Index(fields=["trace"], name="queueitem_trace"),
        ]

    def __str__(self):
        return f"{self.queue_id}:{self.trace_id}"


class QueueWork(models.Model):
    """One reviewer on one item: a lease (until `expires_at`), an answer or a decline."""

    class State(models.TextChoices):
        LEASED = "leased"
        ANSWERED = "answered"
        DECLINED = "declined"

    item = models.ForeignKey(QueueItem, on_delete=models.CASCADE, related_name="work", db_index=False)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=8, choices=State.choices)
    expires_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True)
    # The assessments written by the answer, by question name (answering again updates them).
    assessment_ids = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        constraints = [
            # one row per reviewer and item: an answer is never duplicated
            models.UniqueConstraint(fields=["item", "reviewer"], name="queuework_unique_reviewer"),
        ]
        indexes = [
            # `next`: the reviewer's live leases (selectors.held_lease). Not partial: a partial index
            # on leases lets the planner scan all of them for one item's live leases instead of
            # taking the (item, reviewer) key
            models.Index(fields=["reviewer", "state", "expires_at"], name="queuework_lease"),
        ]

    def __str__(self):
        return f"{self.state} {self.item_id} by {self.reviewer_id}"
