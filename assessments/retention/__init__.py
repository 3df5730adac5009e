"""Retention: traces older than their experiment's `retention_days` are purged, except pinned ones.

    pins       pinned_trace_ids(experiment): the one place that says which traces a purge keeps
    services   purge_experiment / purge_all: batches through assessments.trace_deletion, one PurgeRun
    models     PurgeRun: when, how many deleted, how many kept because pinned (admin and the page)
    views      the experiment's retention page: settings (owners change them), the last runs

`manage.py purge` (cron) runs it for every experiment with a retention; `--dry-run` prints what
would go.
"""
