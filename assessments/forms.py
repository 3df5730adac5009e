"""Forms of the assessments panel. They parse and type-check only; the services validate and write.

Values come in through one input per value type (thumbs, number, category, JSON); the
`value_type` radio says which one counts, so a form without JavaScript can show all of them.
"""

from __future__ import annotations

import json
import math

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from .models import Assessment

VALUE_TYPES = [
    ("boolean", "Thumbs"),
    ("number", "Number"),
    ("category", "Category"),
    ("json", "JSON"),
]
VALUE_INPUTS = {
    "boolean": "value_boolean",
    "number": "value_number",
    "category": "value_category",
    "json": "value_json",
    "options": "value_options",
}
# Service error keys → the form field that shows them (value errors go to the active value input).
SERVICE_FIELDS = {
    "name": "name",
    "rationale": "rationale",
    "metadata": "metadata",
    "span_id": "span_id",
}


def value_type_of(value) -> str:
    """The form's value type for a stored value."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "category"
    return "json"


def parse_number(text: str):
    """'3' → 3, '0.75' → 0.75; ValidationError for anything else, NaN and infinities included."""
    text = text.strip()
    if text.count(",") == 1 and "." not in text:  # a decimal comma: 0,8
        text = text.replace(",", ".")
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        raise ValidationError(f"“{text[:40]}” is not a number.") from None
    if not math.isfinite(number):
        raise ValidationError("Enter a finite number.")
    return number


def parse_metadata(text: str) -> dict[str, str]:
    """`key=value` lines → {key: value}; blank lines are skipped."""
    metadata: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValidationError(f"Line {number} is not key=value.")
        metadata[key.strip()] = value.strip()
    return metadata


def format_metadata(metadata: dict | None) -> str:
    return "\n".join(f"{key}={value}" for key, value in (metadata or {}).items())


class PanelForm(forms.Form):
    """Marks invalid fields for assistive technology and maps service errors onto fields."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "af-%s")
        super().__init__(*args, **kwargs)
        if "rationale" in self.fields:
            # The browser stops at the limit instead of uploading a megabyte the service refuses.
            self.fields["rationale"].widget.attrs["maxlength"] = settings.FEEDBACKHUB_MAX_VALUE_BYTES

    def add_error(self, field, error):
        super().add_error(field, error)
        for name in self.errors:
            if name in self.fields:
                self.fields[name].widget.attrs.update({"aria-invalid": "true", "aria-describedby": f"af-{name}-error"})

    def add_service_error(self, exc: ValidationError) -> None:
        """Show a service's ValidationError next to the field it names (else above the form)."""
        if not hasattr(exc, "error_dict"):
            self.add_error(None, exc.messages)
            return
        for key, errors in exc.message_dict.items():
            if key == "value" and "value_type" in self.fields:
                target = VALUE_INPUTS.get(self.cleaned_data.get("value_type"), None)
            else:
                target = SERVICE_FIELDS.get(key)
            if target not in self.fields:
                errors = [f"{key}: {message}" for message in errors]
                target = None
            for message in errors:
                self.add_error(target, message)


class ValueTypeField(forms.ChoiceField):
    """The value types the free form offers, plus `options`: the checkboxes of a definition
    whose category takes several options (assessments/includes/definition_inputs.html)."""

    def valid_value(self, value):
        return value == "options" or super().valid_value(value)


class AnyChoices(forms.MultipleChoiceField):
    """A list of strings; the definition (in the services) says which are allowed."""

    def valid_value(self, value):
        return True


class ValueFields(PanelForm):
    """The value, typed by `value_type`, ends up in cleaned_data["value"]."""

    value_type = ValueTypeField(choices=VALUE_TYPES, initial="boolean", widget=forms.RadioSelect)
    value_options = AnyChoices(required=False)
    value_boolean = forms.ChoiceField(choices=[("true", "Thumbs up"), ("false", "Thumbs down")], required=False)
    value_number = forms.CharField(
        required=False,
        max_length=64,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )
    value_category = forms.CharField(
        required=False,
        max_length=10_000,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    value_json = forms.CharField(
        required=False,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 4, "class": "mono", "spellcheck": "false"}),
    )

    def set_initial_value(self, value) -> None:
        value_type = value_type_of(value)
        self.initial["value_type"] = value_type
        if value_type == "boolean":
            self.initial["value_boolean"] = "true" if value else "false"
        elif value_type == "number":
            self.initial["value_number"] = str(value)
        elif value_type == "category":
            self.initial["value_category"] = value
        elif value is not None:
            if isinstance(value, list) and all(isinstance(item, str) for item in value):
                self.initial["value_options"] = value
            self.initial["value_json"] = json.dumps(value, indent=2, ensure_ascii=False)

    def clean(self):
        data = super().clean()
        value_type = data.get("value_type")
        if value_type == "boolean":
            if data.get("value_boolean") not in ("true", "false"):
                self.add_error("value_boolean", "Choose thumbs up or thumbs down.")
            else:
                data["value"] = data["value_boolean"] == "true"
        elif value_type == "number":
            if not data.get("value_number", "").strip():
                self.add_error("value_number", "Enter a number.")
            else:
                try:
                    data["value"] = parse_number(data["value_number"])
                except ValidationError as exc:
                    self.add_error("value_number", exc)
        elif value_type == "category":
            if not data.get("value_category"):
                self.add_error("value_category", "Enter a label.")
            else:
                data["value"] = data["value_category"]
        elif value_type == "options":
            data["value"] = list(data.get("value_options") or [])
        elif value_type == "json":
            text = data.get("value_json", "")
            if not text:
                self.add_error("value_json", 'Enter a JSON value, for example {"score": 3}.')
            else:
                try:
                    data["value"] = json.loads(text)
                except ValueError as exc:
                    self.add_error("value_json", f"This is not valid JSON: {exc}.")
        return data


class MetadataField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 2, "class": "mono", "spellcheck": "false"})

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", "One key=value per line.")
        super().__init__(**kwargs)

    def prepare_value(self, value):
        return format_metadata(value) if isinstance(value, dict) else value

    def to_python(self, value):
        return parse_metadata(super().to_python(value) or "")


class AssessmentCreateForm(ValueFields):
    """Add feedback or an expectation (another rating under an existing name is the same form)."""

    name = forms.CharField(max_length=250)
    rationale = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), strip=False)
    span_id = forms.RegexField(r"^[0-9a-f]{16}$", required=False, error_messages={"invalid": "Not a span id."})
    metadata = MetadataField()

    field_order = ["name", "value_type"]

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "value": data["value"],
            "rationale": data["rationale"],
            "span_id": data["span_id"] or None,
            "metadata": data["metadata"],
        }


class AssessmentUpdateForm(ValueFields):
    """Edit value, rationale and metadata of one assessment, guarded by the version the user saw."""

    rationale = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), strip=False)
    metadata = MetadataField()
    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)

    @classmethod
    def for_assessment(cls, assessment: Assessment, **kwargs) -> AssessmentUpdateForm:
        form = cls(
            initial={
                "rationale": assessment.rationale,
                "metadata": assessment.metadata,
                "version": assessment.version,
            },
            **kwargs,
        )
        form.set_initial_value(assessment.value)
        return form

    def service_kwargs(self, assessment: Assessment) -> dict:
        """Only what changed, so an untouched field never counts as an edit."""
        data = self.cleaned_data
        changes = {}
        if data["value"] != assessment.value or type(data["value"]) is not type(assessment.value):
            changes["value"] = data["value"]
        if data["rationale"] != assessment.rationale:
            changes["rationale"] = data["rationale"]
        if data["metadata"] != assessment.metadata:
            changes["metadata"] = data["metadata"]
        return changes


class OverrideForm(ValueFields):
    """A human correction of a judge's or a code check's feedback."""

    rationale = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), strip=False)

    @classmethod
    def for_assessment(cls, assessment: Assessment, **kwargs) -> OverrideForm:
        form = cls(**kwargs)
        form.set_initial_value(assessment.value)
        return form


class ThumbForm(forms.Form):
    """Thumbs up / down on the trace's main boolean feedback (keys u and d)."""

    value = forms.ChoiceField(choices=[("true", "Thumbs up"), ("false", "Thumbs down")])
    name = forms.CharField(max_length=250, required=False)
