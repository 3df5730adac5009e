"""Forms of the queue pages: parse and type-check only (the services decide)."""

from __future__ import annotations

import json

from django import forms
from django.core.exceptions import ValidationError

from assessments.definitions.rules import Rule


class QueueForm(forms.Form):
    name = forms.CharField(max_length=200)
    instructions = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    questions = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, help_text="Asked in this order.")
    reviewers = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, help_text="None ticked: every reviewer."
    )
    answers_per_item = forms.IntegerField(min_value=1, max_value=10, initial=1, label="Answers per item")
    blind = forms.BooleanField(required=False, help_text="Reviewers see others' answers only after their own.")
    lease_seconds = forms.IntegerField(min_value=1, max_value=7 * 24 * 3600, initial=600, label="Lease (seconds)")
    rule_filter = forms.CharField(
        required=False, label="Rule: add traces matching", widget=forms.TextInput(attrs={"class": "mono"})
    )
    rule_sample_rate = forms.FloatField(min_value=0, max_value=1, initial=1.0, label="Sample rate")

    def __init__(self, *args, question_names=(), reviewer_names=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["questions"].choices = [(n, n) for n in question_names]
        self.fields["reviewers"].choices = [(n, n) for n in reviewer_names]

    def clean_questions(self):
        # the browser sends the ticked boxes in page order; keep that order
        return list(self.cleaned_data["questions"])


class AddItemsForm(forms.Form):
    trace_ids = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}))
    filter = forms.CharField(required=False, widget=forms.TextInput(attrs={"class": "mono"}))
    limit = forms.IntegerField(required=False, min_value=1, max_value=100_000)
    restore = forms.BooleanField(required=False, label="Re-add removed items")

    def clean(self):
        data = super().clean()
        ids = [t for t in (data.get("trace_ids") or "").replace(",", " ").split() if t]
        text = (data.get("filter") or "").strip()
        if ids and text:
            raise ValidationError("Give trace ids or a filter, not both.")
        data["ids"] = ids or None
        data["filter_text"] = text if not ids else None
        if not ids and data.get("filter_text") is None and not self.has_error("filter"):
            data["filter_text"] = ""  # the empty filter: every trace, up to the limit
        return data


def parse_answers(rules: list[Rule], data) -> tuple[dict, dict, dict[str, str]]:
    """The focus form's answers (`q-<name>`) and notes (`r-<name>`) typed by each question's
    definition; returns (answers, rationale, errors by name). A blank answer is left out (the
    service says which are missing)."""
    answers, rationale, errors = {}, {}, {}
    for rule in rules:
        key = f"q-{rule.name}"
        note = (data.get(f"r-{rule.name}") or "").strip()
        if note:
            rationale[rule.name] = note
        if rule.type == "category" and rule.constraints.get("multiple"):
            values = data.getlist(key)
            if values:
                answers[rule.name] = values
            continue
        raw = (data.get(key) or "").strip() if rule.type != "text" else data.get(key) or ""
        if raw == "":
            continue
        try:
            answers[rule.name] = _typed(rule, raw)
        except ValueError:
            errors[rule.name] = f"{rule.label} expects {rule.describe()}; got {raw[:40]!r}."
    return answers, rationale, errors


def _typed(rule: Rule, raw: str):
    if rule.type == "boolean":
        if raw not in ("true", "false"):
            raise ValueError(raw)
        return raw == "true"
    if rule.type == "number":
        number = float(raw)
        return int(number) if number.is_integer() else number
    if rule.type == "json":
        return json.loads(raw)
    return raw
