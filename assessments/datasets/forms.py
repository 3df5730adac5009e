"""Forms of the dataset pages: shape only; the services decide."""

import json

from django import forms

from .services import DEFAULT_FILTER_LIMIT, MAX_TRACES_PER_CALL


class DatasetForm(forms.Form):
    name = forms.CharField(max_length=250)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class AddRecordsForm(forms.Form):
    """Trace ids (one per line, or separated by spaces or commas) or a filter with a limit."""

    trace_ids = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}))
    filter = forms.CharField(required=False, widget=forms.TextInput(attrs={"class": "mono"}))
    limit = forms.IntegerField(required=False, min_value=1, max_value=MAX_TRACES_PER_CALL, initial=DEFAULT_FILTER_LIMIT)
    include_outputs = forms.BooleanField(required=False, initial=True, label="Copy each trace's output as a reference")

    def clean_trace_ids(self):
        return [part for part in self.cleaned_data["trace_ids"].replace(",", " ").split() if part]

    def clean(self):
        data = super().clean()
        if bool(data.get("trace_ids")) == bool(data.get("filter")):
            raise forms.ValidationError("Give trace ids or a filter (not both).")
        return data


class JSONTextField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 4, "class": "mono"})

    def __init__(self, *, must_be_object: bool = True, **kwargs):
        self.must_be_object = must_be_object
        super().__init__(**kwargs)

    def clean(self, value):
        text = super().clean(value)
        if not text.strip():
            return None if not self.must_be_object else {}
        try:
            parsed = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"This is not valid JSON: {exc}.") from None
        if self.must_be_object and not isinstance(parsed, dict):
            raise forms.ValidationError('Write a JSON object, e.g. {"question": "…"}.')
        return parsed


class RecordForm(forms.Form):
    inputs = JSONTextField()
    expectations = JSONTextField(required=False)
    outputs = JSONTextField(required=False, must_be_object=False, help_text="Any JSON; empty for none.")
    tags = JSONTextField(required=False)

    @staticmethod
    def initial_of(record) -> dict:
        """The record's fields as the JSON text the textareas show."""
        return {
            name: ""
            if getattr(record, name) is None
            else json.dumps(getattr(record, name), indent=2, ensure_ascii=False)
            for name in ("inputs", "expectations", "outputs", "tags")
        }


class PublishForm(forms.Form):
    note = forms.CharField(required=False, max_length=500)
