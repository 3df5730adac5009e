"""Shapes of definitions on the native API: constraints sit beside name and type."""

from rest_framework import serializers

from traces.serializers import JSONValueField

from .models import Definition, DefinitionVersion
from .rules import ALL_CONSTRAINTS


class DefinitionInput(serializers.Serializer):
    """A new definition (POST) or the changes of a new version (PATCH, every field optional)."""

    name = serializers.CharField(max_length=250)
    kind = serializers.ChoiceField(choices=Definition.Kind.choices, default=Definition.Kind.FEEDBACK)
    type = serializers.ChoiceField(choices=DefinitionVersion.Type.choices)
    description = serializers.CharField(allow_blank=True, required=False, max_length=10_000)
    min = JSONValueField(required=False, allow_null=True, help_text="number: lowest value allowed")
    max = JSONValueField(required=False, allow_null=True, help_text="number: highest value allowed")
    integer = JSONValueField(required=False, allow_null=True, help_text="number: whole numbers only")
    levels = JSONValueField(
        required=False, allow_null=True, help_text='number: value → description, e.g. {"1": "Useless"}'
    )
    options = JSONValueField(
        required=False,
        allow_null=True,
        help_text="category: a list of values, or of {value, label, description}",
    )
    multiple = JSONValueField(required=False, allow_null=True, help_text="category: a list of options at once")
    max_length = JSONValueField(required=False, allow_null=True, help_text="text: longest text in characters")
    json_schema = JSONValueField(required=False, allow_null=True, help_text="json: a JSON Schema the value must match")

    def __init__(self, *args, partial_update: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if partial_update:
            for name in ("name", "kind", "type"):
                self.fields[name].required = False
            self.fields["kind"].default = serializers.empty

    def validate(self, attrs):
        unknown = set(self.initial_data) - set(self.fields) if isinstance(self.initial_data, dict) else set()
        unknown -= {"version", "archived", "created_at", "updated_at", "experiment_id"}  # read back and sent again
        if unknown:
            raise serializers.ValidationError({sorted(unknown)[0]: ["is not a definition field"]})
        return attrs


def version_representation(version: DefinitionVersion) -> dict:
    definition = version.definition
    data = {
        "name": definition.name,
        "kind": definition.kind,
        "type": version.type,
        "description": version.description,
        "version": version.version,
    }
    data.update({key: version.constraints[key] for key in ALL_CONSTRAINTS if key in version.constraints})
    return data


class DefinitionVersionOut(serializers.Serializer):
    """One version of a definition; constraints beside name and type (only those set)."""

    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=Definition.Kind.choices)
    type = serializers.ChoiceField(choices=DefinitionVersion.Type.choices)
    description = serializers.CharField()
    version = serializers.IntegerField()
    min = serializers.FloatField(required=False)
    max = serializers.FloatField(required=False)
    integer = serializers.BooleanField(required=False)
    levels = serializers.DictField(child=serializers.CharField(), required=False)
    options = serializers.ListField(child=serializers.DictField(), required=False)
    multiple = serializers.BooleanField(required=False)
    max_length = serializers.IntegerField(required=False)
    json_schema = serializers.JSONField(required=False)
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField(help_text="Who wrote this version.")

    def to_representation(self, version: DefinitionVersion) -> dict:
        return {
            **version_representation(version),
            "created_at": version.created_at.isoformat(),
            "created_by": version.actor_label,
        }


class DefinitionOut(DefinitionVersionOut):
    """A definition as its current version says it, plus whether it is archived."""

    experiment_id = serializers.CharField()
    archived = serializers.BooleanField(help_text="Archived definitions are no longer enforced.")
    updated_at = serializers.DateTimeField()

    def to_representation(self, version: DefinitionVersion) -> dict:
        definition = version.definition
        return {
            **version_representation(version),
            "experiment_id": str(definition.experiment_id),
            "archived": definition.archived_at is not None,
            "created_at": definition.created_at.isoformat(),
            "updated_at": definition.updated_at.isoformat(),
            "created_by": version.actor_label,
        }
