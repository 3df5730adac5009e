"""One row per purge of one experiment: what `manage.py purge` did, for admins and owners."""

from django.db import models

from traces.models import Experiment


class PurgeRun(models.Model):
    """A purge of one experiment's traces older than its retention (dry runs leave none)."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="purge_runs", db_index=False)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    retention_days = models.PositiveIntegerField()
    # Traces that started before this were due.
    cutoff = models.DateTimeField()
    deleted = models.PositiveIntegerField(help_text="Traces deleted (with their spans, assessments and revisions).")
    kept_pinned = models.PositiveIntegerField(help_text="Traces past the retention kept because they are pinned.")
    batches = models.PositiveIntegerField(default=0)
    actor_label = models.CharField(max_length=250)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            # the retention page: an experiment's last runs
            models.Index(fields=["experiment", "-started_at"], name="purgerun_exp_started"),
        ]

    def __str__(self):
        return f"purge of {self.experiment_id} at {self.started_at:%Y-%m-%d %H:%M}: {self.deleted} deleted"

    @property
    def seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()
