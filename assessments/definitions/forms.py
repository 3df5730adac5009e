"""The definitions page's form: parses text inputs into the services' keyword arguments.

Levels are `value = description` lines, options `value | label | description` lines, the
JSON Schema is JSON text. The services check what the values mean (min > max and so on).
"""

from __future__ import annotations

import json
import math

from django import forms
from django.core.exceptions import ValidationError

from .models import Definition, DefinitionVersion
from .rules import ALL_CONSTRAINTS


def _number(text: str, field: str):
    text = text.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        raise ValidationError({field: f"“{text[:40]}” is not a number."}) from None
    if not math.isfinite(number):
        raise ValidationError({field: "Enter a finite number."})
    return number


def format_levels(levels: dict | None) -> str:
    return "\n".join(f"{key} = {text}" for key, text in (levels or {}).items())


def format_options(options: list | None) -> str:
    lines = []
    for option in options or ():
        parts = [option["value"], option.get("label", ""), option.get("description", "")]
        while parts and not parts[-1]:
            parts.pop()
        lines.append(" | ".join(parts))
    return "\n".join(lines)


class DefinitionForm(forms.Form):
    """A definition's fields; `service_kwargs()` gives create_definition / update_definition theirs."""

    name = forms.CharField(max_length=250)
    kind = forms.ChoiceField(choices=Definition.Kind.choices, initial=Definition.Kind.FEEDBACK)
    type = forms.ChoiceField(choices=DefinitionVersion.Type.choices, initial="number")
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="Instructions for reviewers."
    )
    min = forms.CharField(required=False, max_length=40, widget=forms.TextInput(attrs={"inputmode": "decimal"}))
    max = forms.CharField(required=False, max_length=40, widget=forms.TextInput(attrs={"inputmode": "decimal"}))
    integer = forms.BooleanField(required=False, label="Whole numbers only")
    levels = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}),
        help_text="One “value = description” per line, e.g. 1 = Useless.",
    )
    options = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "class": "mono"}),
        help_text="One option per line: value | label | description (label and description optional).",
    )
    multiple = forms.BooleanField(required=False, label="Several options at once")
    max_length = forms.IntegerField(required=False, min_value=1, label="Longest text (characters)")
    json_schema = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 4, "class": "mono"}), label="JSON Schema"
    )

    def __init__(self, *args, editing: bool = False, **kwargs):
        kwargs.setdefault("auto_id", "def-%s")
        super().__init__(*args, **kwargs)
        if editing:
            for name in ("name", "kind"):
                self.fields[name].disabled = True

    @classmethod
    def initial_of(cls, version: DefinitionVersion) -> dict:
        """The form's initial data for an existing version (or a proposal shaped like one)."""
        constraints = version.constraints or {}
        return {
            "name": version.definition.name,
            "kind": version.definition.kind,
            "type": version.type,
            "description": version.description,
            "min": "" if constraints.get("min") is None else str(constraints["min"]),
            "max": "" if constraints.get("max") is None else str(constraints["max"]),
            "integer": constraints.get("integer", False),
            "levels": format_levels(constraints.get("levels")),
            "options": format_options(constraints.get("options")),
            "multiple": constraints.get("multiple", False),
            "max_length": constraints.get("max_length"),
            "json_schema": json.dumps(constraints["json_schema"], indent=2) if "json_schema" in constraints else "",
        }

    def service_kwargs(self) -> dict:
        """The definition as the services take it: only the constraints of the chosen type.
        Raises ValidationError (keyed by field) for lines it cannot read."""
        data = self.cleaned_data
        type_ = data["type"]
        kwargs = {"type": type_, "description": data["description"]}
        if type_ == "number":
            kwargs["min"] = _number(data["min"], "min")
            kwargs["max"] = _number(data["max"], "max")
            kwargs["integer"] = data["integer"]
            levels = {}
            for number, line in enumerate(data["levels"].splitlines(), start=1):
                if line.strip():
                    key, sep, text = line.partition("=")
                    if not sep:
                        raise ValidationError({"levels": f"Line {number} is not “value = description”."})
                    levels[key.strip()] = text.strip()
            kwargs["levels"] = levels or None
        elif type_ == "category":
            options = []
            for line in data["options"].splitlines():
                if line.strip():
                    value, label, description = ([part.strip() for part in line.split("|", 2)] + ["", ""])[:3]
                    options.append({"value": value, "label": label, "description": description})
            kwargs["options"] = options
            kwargs["multiple"] = data["multiple"]
        elif type_ == "text":
            kwargs["max_length"] = data["max_length"]
        elif type_ == "json" and data["json_schema"].strip():
            try:
                kwargs["json_schema"] = json.loads(data["json_schema"])
            except ValueError as exc:
                raise ValidationError({"json_schema": f"This is not valid JSON: {exc}."}) from None
        return kwargs

    def cleaned_data_for_create(self) -> dict:
        return {"name": self.cleaned_data["name"], "kind": self.cleaned_data["kind"], **self.service_kwargs()}

    def add_service_error(self, exc: ValidationError) -> None:
        """A service's ValidationError next to the field it names (else above the form)."""
        if not hasattr(exc, "error_dict"):
            self.add_error(None, exc.messages)
            return
        for key, messages in exc.message_dict.items():
            target = (
                key if key in self.fields and key in (*ALL_CONSTRAINTS, "name", "kind", "type", "description") else None
            )
            for message in messages:
                self.add_error(target, message if target else f"{key}: {message}")
