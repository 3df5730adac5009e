"""Django admin for experiments, memberships, API keys, traces and spans.

Traces and spans are read-only here: they arrive through ingestion (native API,
MLflow protocol, OTLP). API keys are created and revoked through
`traces.services`, so admin and `manage.py createapikey` behave the same.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms.models import BaseInlineFormSet
from django.urls import reverse
from django.utils.html import format_html

from assessments.experiment_settings import SETTINGS, update_experiment_settings
from assessments.trace_deletion import delete_traces

from . import services
from .access import Actor
from .models import ApiKey, Experiment, Membership, Run, Span, Trace, TraceDeletion
from .templatetags.trace_tags import duration as duration_text

# The trace page in admin shows this many spans; the reviewer UI shows them all.
ADMIN_SPAN_LIMIT = 50


class ServiceErrorsMixin:
    """Show a service's ValidationError on the admin form instead of answering 500.

    Admin saves inside `changeform_view`'s transaction; when `save_model` (which calls a
    service) raises, the transaction rolls back and the view runs again with a form that
    carries the service's messages, so nothing is written and the admin sees why.
    """

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationError as exc:
            request._service_error = exc
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change=change, **kwargs)
        error = getattr(request, "_service_error", None)
        if error is None:
            return form_class

        class FormWithServiceErrors(form_class):
            def clean(self):
                cleaned = super().clean()
                for field, messages_ in error_messages(error).items():
                    if field in self.fields:
                        self.add_error(field, messages_)
                    else:
                        self.add_error(None, [f"{field}: {message}" for message in messages_])
                return cleaned

        return FormWithServiceErrors


def error_messages(error: ValidationError) -> dict[str, list[str]]:
    if hasattr(error, "error_dict"):
        return {field: [str(m) for e in errors for m in e.messages] for field, errors in error.error_dict.items()}
    return {"__all__": list(error.messages)}


def admin_actor(request) -> Actor:
    return Actor.for_user(request.user)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(Experiment)
class ExperimentAdmin(ServiceErrorsMixin, admin.ModelAdmin):
    list_display = ["name", "description", "retention_days", "created_at", "updated_at"]
    search_fields = ["name", "description"]
    date_hierarchy = "created_at"
    readonly_fields = ["created_at", "updated_at"]
    inlines = [MembershipInline]

    def get_fields(self, request, obj=None):
        # A new experiment starts with the default settings; they are changed afterwards,
        # through the one settings service.
        return ["name", "description", *((*SETTINGS, "created_at", "updated_at") if obj else ())]

    def save_model(self, request, obj, form, change):
        if change:
            settings = {field: form.cleaned_data[field] for field in SETTINGS if field in form.changed_data}
            if settings:
                update_experiment_settings(experiment=obj, actor=admin_actor(request), **settings)
            obj.save(update_fields=["name", "description", "updated_at"])
            return
        try:
            created = services.create_experiment(
                name=form.cleaned_data["name"],
                description=form.cleaned_data.get("description", ""),
                actor=admin_actor(request),
            )
        except services.Conflict as exc:
            raise ValidationError({"name": str(exc)}) from None
        obj.pk = created.pk
        obj.name, obj.created_at, obj.updated_at = created.name, created.created_at, created.updated_at
        obj._state.adding = False


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "experiment", "role", "created_at"]
    list_filter = ["role", "experiment"]
    search_fields = ["user__username", "user__email", "experiment__name"]
    list_select_related = ["user", "experiment"]
    raw_id_fields = ["user"]
    readonly_fields = ["created_at"]


@admin.register(ApiKey)
class ApiKeyAdmin(ServiceErrorsMixin, admin.ModelAdmin):
    """Adding a key generates it and shows the secret once; "Revoke" and "Rotate" retire one
    (keys are never deleted, so the revisions they wrote keep naming them)."""

    list_display = ["label", "prefix", "experiment_names", "created_by", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), "experiments", "created_at"]
    search_fields = ["label", "prefix", "experiments__name"]
    list_select_related = ["created_by"]
    filter_horizontal = ["experiments"]
    actions = ["revoke", "rotate"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("experiments")

    def has_delete_permission(self, request, obj=None):
        # Revisions name the key that acted; revoking keeps that link, deleting would cut it.
        return False

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["label", "experiments"]
        return ["label", "prefix", "experiments", "created_by", "created_at", "last_used_at", "revoked_at"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        # The scope of an existing key is fixed: a new scope is a new key.
        return ["prefix", "experiments", "created_by", "created_at", "last_used_at", "revoked_at"]

    @admin.display(description="Experiments")
    def experiment_names(self, obj):
        return ", ".join(experiment.name for experiment in obj.experiments.all())

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["label"])
            return
        try:
            api_key, raw = services.create_api_key(
                experiments=form.cleaned_data["experiments"],
                label=form.cleaned_data.get("label", ""),
                actor=admin_actor(request),
            )
        except PermissionDenied as exc:
            raise ValidationError({"experiments": str(exc)}) from None
        for field in ApiKey._meta.concrete_fields:
            setattr(obj, field.attname, getattr(api_key, field.attname))
        obj._state.adding = False
        messages.warning(
            request,
            format_html(
                "The new API key is <code>{}</code>. Copy it now: it is stored only as a hash and "
                "will not be shown again.",
                raw,
            ),
        )

    def save_related(self, request, form, formsets, change):
        # create_api_key already set the experiments; a change cannot alter them.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    @admin.action(description="Revoke selected API keys")
    def revoke(self, request, queryset):
        actor = admin_actor(request)
        count = 0
        for api_key in queryset:
            before = api_key.revoked_at
            services.revoke_api_key(api_key=api_key, actor=actor)
            count += api_key.revoked_at != before
        self.message_user(request, f"Revoked {count} API key(s).", messages.SUCCESS)

    @admin.action(description="Rotate selected API keys (the old key works for the grace period)")
    def rotate(self, request, queryset):
        actor = admin_actor(request)
        for api_key in queryset:
            try:
                _, raw = services.rotate_api_key(api_key=api_key, actor=actor)
            except services.Conflict as exc:
                self.message_user(request, f"{api_key}: {exc}", messages.ERROR)
                continue
            messages.warning(
                request,
                format_html(
                    "{} is replaced by <code>{}</code> (copy it now, it will not be shown again); "
                    "the old key stops working at {}.",
                    api_key,
                    raw,
                    api_key.revoked_at,
                ),
            )


class ReadOnlyAdminMixin:
    """Rows that only ingestion writes: admins may look (and delete traces), never edit."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class LimitedSpanFormSet(BaseInlineFormSet):
    def get_queryset(self):
        return super().get_queryset().order_by("start_time_ns", "span_id")[:ADMIN_SPAN_LIMIT]


class SpanInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Span
    formset = LimitedSpanFormSet
    fields = ["span_link", "name", "span_type", "status_code", "parent_span_id", "duration"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    verbose_name_plural = f"Spans (first {ADMIN_SPAN_LIMIT} by start time)"

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).defer("inputs", "outputs", "attributes", "events")

    @admin.display(description="Span")
    def span_link(self, obj):
        return format_html('<a href="{}">{}</a>', reverse("admin:traces_span_change", args=[obj.pk]), obj.span_id)

    @admin.display(description="Duration")
    def duration(self, obj):
        return duration_text(obj.duration_ms)  # "1.24 s", not 1240.123456


@admin.register(Trace)
class TraceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["trace_id", "experiment", "name", "state", "request_time", "execution_time_ms", "span_count"]
    list_filter = ["state", "experiment", "request_time"]
    search_fields = ["=trace_id", "name", "=client_request_id", "=session_id", "=user_id"]
    list_select_related = ["experiment"]
    date_hierarchy = "request_time"
    ordering = ["-request_time"]
    show_full_result_count = False
    inlines = [SpanInline]
    fields = [
        "trace_id",
        "experiment",
        "name",
        "state",
        "request_time",
        "execution_time_ms",
        "span_count",
        "request_preview",
        "response_preview",
        "client_request_id",
        "session_id",
        "user_id",
        "tags",
        "metadata",
        "created_at",
        "updated_at",
    ]
    readonly_fields = fields

    def delete_model(self, request, obj):
        """Through the deletion service: spans, assessments, history and held feedback go, one
        TraceDeletion row (channel admin) records it."""
        delete_traces(
            experiment=obj.experiment, actor=Actor.for_user(request.user), channel="admin", trace_ids=[obj.pk]
        )

    def delete_queryset(self, request, queryset):
        by_experiment: dict = {}
        for trace in queryset.select_related("experiment").only("trace_id", "experiment"):
            by_experiment.setdefault(trace.experiment, []).append(trace.trace_id)
        actor = Actor.for_user(request.user)
        for experiment, trace_ids in by_experiment.items():
            delete_traces(experiment=experiment, actor=actor, channel="admin", trace_ids=trace_ids)


@admin.register(TraceDeletion)
class TraceDeletionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The audit of trace deletions: who deleted which traces of which experiment, when, how."""

    list_display = ["created_at", "actor_label", "channel", "experiment_id", "trace_count"]
    list_filter = ["channel", "created_at"]
    search_fields = ["actor_label"]
    date_hierarchy = "created_at"
    fields = [
        "created_at",
        "actor_label",
        "actor_user",
        "actor_key",
        "channel",
        "experiment_id",
        "trace_count",
        "trace_ids",
        "removed",
        "criteria",
    ]
    readonly_fields = fields

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Run)
class RunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Evaluation runs (MLflow runs) as the client logged them."""

    list_display = ["run_id", "name", "experiment", "status", "created_at"]
    list_filter = ["status", "experiment"]
    search_fields = ["=run_id", "name"]
    list_select_related = ["experiment"]
    fields = ["run_id", "experiment", "name", "user_id", "status", "start_time_ms", "end_time_ms", "tags"]
    fields += ["params", "metrics", "inputs", "created_by", "created_by_key", "created_at"]
    readonly_fields = fields


@admin.register(Span)
class SpanAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["span_id", "name", "span_type", "status_code", "trace", "start_time_ns", "duration"]
    list_filter = ["span_type", "status_code"]
    search_fields = ["=span_id", "=trace__trace_id", "name"]
    list_select_related = ["trace"]
    raw_id_fields = ["trace"]
    show_full_result_count = False
    fields = [
        "trace",
        "span_id",
        "parent_span_id",
        "name",
        "span_type",
        "kind",
        "start_time_ns",
        "end_time_ns",
        "status_code",
        "status_message",
        "inputs",
        "outputs",
        "attributes",
        "events",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.resolver_match and request.resolver_match.url_name.endswith("changelist"):
            queryset = queryset.defer("inputs", "outputs", "attributes", "events")
        return queryset

    @admin.display(description="Duration")
    def duration(self, obj):
        return duration_text(obj.duration_ms)  # "1.24 s", not 1240.123456
