"""Django admin for evaluation datasets: read them, and delete them through the service.

Records and versions are changed on the dataset pages and APIs (the services keep their
provenance and the immutability of versions); here they are shown read-only.
"""

from django.contrib import admin

from traces.admin import admin_actor

from . import services
from .models import Dataset, DatasetRecord, DatasetVersion


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class RecordInline(ReadOnlyInline):
    model = DatasetRecord
    fields = ["record_id", "inputs", "expectations", "source_trace_id", "updated_at"]
    readonly_fields = fields


class VersionInline(ReadOnlyInline):
    model = DatasetVersion
    fields = ["version", "record_count", "note", "created_at", "created_by"]
    readonly_fields = fields


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "experiment", "current_version", "updated_at", "updated_by"]
    list_filter = ["experiment"]
    search_fields = ["name", "dataset_id"]
    list_select_related = ["experiment"]
    readonly_fields = [f.name for f in Dataset._meta.fields]
    inlines = [VersionInline, RecordInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        services.delete_dataset(dataset=obj, actor=admin_actor(request))

    def delete_queryset(self, request, queryset):
        for dataset in queryset:
            services.delete_dataset(dataset=dataset, actor=admin_actor(request))
