"""Purge runs in admin: read-only, written by `manage.py purge` only."""

from django.contrib import admin

from ..admin import ReadOnlyAdmin
from .models import PurgeRun


@admin.register(PurgeRun)
class PurgeRunAdmin(ReadOnlyAdmin):
    list_display = ["experiment", "started_at", "retention_days", "deleted", "kept_pinned", "batches", "duration"]
    list_filter = ["experiment"]
    list_select_related = ["experiment"]
    date_hierarchy = "started_at"

    @admin.display(description="seconds")
    def duration(self, obj):
        return f"{obj.seconds:.1f}"
