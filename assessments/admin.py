"""Django admin for assessments, their revisions and feedback waiting for its trace.

Every assessment change made here goes through `assessments.services` with channel
`admin`, so it is validated like any other and leaves a revision. Revisions and
pending assessments are read-only.
"""

import json

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.html import format_html

from traces.admin import ServiceErrorsMixin, admin_actor

from . import services
from .definitions import admin as definitions_admin  # noqa: F401 (registers the definitions' admin)
from .models import Assessment, PendingAssessment, Revision

CREATE_FIELDS = [
    "trace",
    "span_id",
    "kind",
    "name",
    "value",
    "error",
    "rationale",
    "source_type",
    "source_id",
    "metadata",
]
READ_FIELDS = [
    "assessment_id",
    "trace",
    "span_id",
    "kind",
    "source_type",
    "source_id",
    "overrides",
    "valid",
    "version",
    "created_by",
    "created_by_key",
    "create_time",
    "last_update_time",
]


def short_json(value, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@admin.register(Assessment)
class AssessmentAdmin(ServiceErrorsMixin, admin.ModelAdmin):
    list_display = [
        "assessment_id",
        "name",
        "kind",
        "value_display",
        "source_type",
        "source_id",
        "valid",
        "trace_id",
        "experiment",
        "create_time",
    ]
    list_filter = ["kind", "source_type", "valid", "experiment", "create_time"]
    search_fields = ["=assessment_id", "=trace__trace_id", "name", "source_id"]
    list_select_related = ["experiment"]
    raw_id_fields = ["trace", "overrides"]
    date_hierarchy = "create_time"
    show_full_result_count = False

    def get_fields(self, request, obj=None):
        if obj is None:
            return CREATE_FIELDS
        return [*READ_FIELDS[:3], *services.EDITABLE_FIELDS, *READ_FIELDS[3:]]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else READ_FIELDS

    @admin.display(description="Value")
    def value_display(self, obj):
        if obj.value is None and obj.error:
            return format_html("<em>error: {}</em>", obj.error.get("error_code", ""))
        return short_json(obj.value)

    def save_model(self, request, obj, form, change):
        actor = admin_actor(request)
        data = form.cleaned_data
        if change:
            changes = {field: data[field] for field in services.EDITABLE_FIELDS if field in form.changed_data}
            saved = services.update(assessment=obj, actor=actor, channel="admin", **changes)
        else:
            common = dict(
                trace=data["trace"],
                name=data["name"],
                value=data.get("value"),
                rationale=data.get("rationale"),
                source_type=data["source_type"],
                source_id=data.get("source_id") or actor.label,
                span_id=data.get("span_id") or None,
                metadata=data.get("metadata"),
                actor=actor,
                channel="admin",
                assessment_id=obj.assessment_id,
            )
            if data["kind"] == Assessment.Kind.EXPECTATION:
                if data.get("error"):
                    raise ValidationError({"error": "An expectation cannot carry an error."})
                saved = services.log_expectation(**common)
            else:
                saved = services.log_feedback(error=data.get("error"), **common)
        for field in Assessment._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))
        obj._state.adding = False

    def delete_model(self, request, obj):
        services.delete(assessment=obj, actor=admin_actor(request), channel="admin")

    def delete_queryset(self, request, queryset):
        actor = admin_actor(request)
        # Overrides first, so that deleting an override and its original together restores nothing twice.
        for assessment in queryset.order_by("-create_time"):
            services.delete(assessment=assessment, actor=actor, channel="admin")


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Revision)
class RevisionAdmin(ReadOnlyAdmin):
    """The audit trail: never edited, never deleted."""

    list_display = [
        "created_at",
        "action",
        "channel",
        "actor_label",
        "assessment_id",
        "trace_id",
    ]
    list_filter = ["action", "channel", "created_at"]
    search_fields = [
        "=assessment_id",
        "=related_assessment_id",
        "=trace_id",
        "actor_label",
    ]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]  # newest first: an audit trail is read from the latest change
    show_full_result_count = False
    fields = [
        "created_at",
        "action",
        "channel",
        "actor_label",
        "actor_user",
        "actor_key",
        "assessment_id",
        "related_assessment_id",
        "trace_id",
        "experiment_id",
        "before",
        "after",
    ]
    readonly_fields = fields


@admin.register(PendingAssessment)
class PendingAssessmentAdmin(ReadOnlyAdmin):
    """Feedback that arrived before its trace; the services attach or expire it."""

    list_display = [
        "assessment_id",
        "trace_id",
        "kind",
        "channel",
        "created_at",
        "expires_at",
    ]
    list_filter = ["kind", "channel"]
    search_fields = ["=assessment_id", "=trace_id"]
    fields = [
        "assessment_id",
        "trace_id",
        "kind",
        "channel",
        "actor_user",
        "actor_key",
        "payload",
        "created_at",
        "expires_at",
    ]
    readonly_fields = fields
