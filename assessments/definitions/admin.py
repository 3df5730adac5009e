"""Django admin for definitions: list, create, edit (a new version), archive (delete), versions.

Saves go through `assessments.definitions.services`, so admin writes are checked and
versioned like every other; a refused definition shows as a form error.
"""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.html import format_html_join

from traces.admin import ServiceErrorsMixin, admin_actor
from traces.services import Conflict

from . import services
from .models import Definition, DefinitionVersion


class DefinitionAdminForm(forms.ModelForm):
    type = forms.ChoiceField(choices=DefinitionVersion.Type.choices)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    constraints = forms.JSONField(
        required=False,
        initial=dict,
        help_text='The type\'s constraints, e.g. {"min": 1, "max": 5, "integer": true, "levels": {"1": "Useless"}}, '
        '{"options": ["billing", "shipping"], "multiple": false}, {"max_length": 500} or {"json_schema": {…}}.',
    )

    class Meta:
        model = Definition
        fields = ["experiment", "name", "kind"]

    def validate_unique(self):
        """The services decide (an archived name may be defined again)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            current = self.instance.versions.filter(version=self.instance.current_version).first()
            if current is not None:
                self.initial.update(type=current.type, description=current.description, constraints=current.constraints)


class DefinitionVersionInline(admin.TabularInline):
    model = DefinitionVersion
    extra = 0
    fields = ["version", "type", "constraints", "description", "actor_label", "created_at"]
    readonly_fields = fields
    ordering = ["-version"]
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Definition)
class DefinitionAdmin(ServiceErrorsMixin, admin.ModelAdmin):
    form = DefinitionAdminForm
    list_display = ["name", "experiment", "kind", "current_version", "archived_at", "updated_at"]
    list_filter = ["kind", "experiment", "archived_at"]
    search_fields = ["name"]
    list_select_related = ["experiment"]
    inlines = [DefinitionVersionInline]
    actions = ["archive"]

    def get_fields(self, request, obj=None):
        fields = ["experiment", "name", "kind", "type", "description", "constraints"]
        return fields if obj is None else [*fields, "current_version", "archived_at", "rules"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["experiment", "name", "kind", "current_version", "archived_at", "rules"]

    @admin.display(description="Versions")
    def rules(self, obj):
        return format_html_join(
            "", "<div>v{}: {} {}</div>", ((v.version, v.type, v.constraints) for v in obj.versions.order_by("version"))
        )

    def save_model(self, request, obj, form, change):
        try:
            self._save(request, obj, form, change)
        except Conflict as exc:
            raise ValidationError({"name": str(exc)}) from None

    def _save(self, request, obj, form, change):
        actor = admin_actor(request)
        data = form.cleaned_data
        constraints = data.get("constraints") or {}
        if not isinstance(constraints, dict):
            raise ValidationError({"constraints": "must be a JSON object"})
        if change:
            # Everything the form shows is the new version: constraints left out are removed.
            current = obj.versions.get(version=obj.current_version).constraints
            cleared = {key: None for key in current if key not in constraints}
            version = services.update_definition(
                definition=obj,
                actor=actor,
                type=data["type"],
                description=data["description"],
                **cleared,
                **constraints,
            )
        else:
            version = services.create_definition(
                experiment=data["experiment"],
                actor=actor,
                name=data["name"],
                kind=data["kind"],
                type=data["type"],
                description=data["description"],
                **constraints,
            )
        saved = version.definition
        for field in Definition._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))
        obj._state.adding = False

    def delete_model(self, request, obj):
        """Deleting archives: the definition stops being enforced, its history stays."""
        services.archive_definition(definition=obj, actor=admin_actor(request))

    def delete_queryset(self, request, queryset):
        for definition in queryset:
            services.archive_definition(definition=definition, actor=admin_actor(request))

    @admin.action(description="Archive the selected definitions")
    def archive(self, request, queryset):
        self.delete_queryset(request, queryset)
