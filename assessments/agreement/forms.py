"""What the agreement page and API are asked: two series (A, B) or a name for reviewer agreement.
One form parses both the page's query string and the API's, so they accept the same input."""

from __future__ import annotations

from django import forms

from ..models import Assessment
from .selectors import Series

SOURCE_TYPES = [("", "any source"), *Assessment.SourceType.choices]


class AgreementForm(forms.Form):
    a = forms.CharField(max_length=250, label="A: feedback name")
    a_source_type = forms.ChoiceField(choices=SOURCE_TYPES, required=False, label="A: source type")
    a_source_id = forms.CharField(max_length=250, required=False, label="A: source id")
    a_queue_id = forms.CharField(max_length=250, required=False, label="A: queue")
    b = forms.CharField(max_length=250, label="B: feedback name")
    b_source_type = forms.ChoiceField(choices=SOURCE_TYPES, required=False, label="B: source type")
    b_source_id = forms.CharField(max_length=250, required=False, label="B: source id")
    b_queue_id = forms.CharField(max_length=250, required=False, label="B: queue")

    def clean(self):
        data = super().clean()
        if not self.errors and self.series("a") == self.series("b"):
            raise forms.ValidationError({"b": "B is the same series as A; pick another name, source or queue."})
        return data

    def series(self, side: str) -> Series:
        data = self.cleaned_data
        return Series(
            name=data[side],
            source_type=data.get(f"{side}_source_type") or "",
            source_id=data.get(f"{side}_source_id") or "",
            queue_id=data.get(f"{side}_queue_id") or "",
        )


class ReviewerAgreementForm(forms.Form):
    name = forms.CharField(max_length=250, label="Feedback name")
    queue_id = forms.CharField(max_length=250, required=False, label="Queue")
