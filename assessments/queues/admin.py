"""Review queues in admin: read-only. Queues, items and answers are written by the queue services
(the queue pages and the native API), which decide leases, slots and blind mode; admin shows them
and links to the queue page."""

from django.contrib import admin
from django.db.models import Count, Q
from django.urls import reverse
from django.utils.html import format_html

from ..admin import ReadOnlyAdmin
from .models import Queue


@admin.register(Queue)
class QueueAdmin(ReadOnlyAdmin):
    list_display = [
        "name",
        "experiment",
        "answers_per_item",
        "blind",
        "items",
        "complete",
        "state",
        "created_at",
        "page",
    ]
    list_filter = ["experiment", "blind", ("archived_at", admin.EmptyFieldListFilter)]
    list_select_related = ["experiment"]
    search_fields = ["name"]
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        # Counts in the list's one query: the list costs the same whatever the queues hold.
        live = Q(items__removed_at__isnull=True)
        return (
            super()
            .get_queryset(request)
            .annotate(
                item_count=Count("items", filter=live),
                complete_count=Count("items", filter=live & Q(items__complete=True)),
            )
        )

    @admin.display(description="items", ordering="item_count")
    def items(self, obj):
        return obj.item_count

    @admin.display(description="complete", ordering="complete_count")
    def complete(self, obj):
        return obj.complete_count

    @admin.display(description="state")
    def state(self, obj):
        return "archived" if obj.is_archived else "active"

    @admin.display(description="")
    def page(self, obj):
        return format_html('<a href="{}">Open the queue</a>', reverse("queues:queue_detail", args=[obj.pk]))
