"""The retention form: parses the two settings; assessments.experiment_settings decides."""

from django import forms


class RetentionForm(forms.Form):
    retention_days = forms.IntegerField(
        required=False,
        min_value=1,
        label="Keep traces for (days)",
        help_text="Empty keeps them forever. Older traces are deleted by the nightly purge.",
    )
    retention_keep_human = forms.BooleanField(
        required=False, label="Keep traces that have human feedback, whatever their age"
    )

    def add_service_error(self, exc) -> None:
        for field, messages in getattr(exc, "message_dict", {"__all__": exc.messages}).items():
            self.add_error(field if field in self.fields else None, messages)
