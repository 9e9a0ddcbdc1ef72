from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from django import forms
from django.utils import timezone


class KeyCreateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses the key, e.g. “notebook” or “CI”.")
    expires_on = forms.DateField(
        required=False, label="Expires on", help_text="Optional. The key stops working at the start of that day (UTC).",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def clean_expires_on(self):  # type: ignore[no-untyped-def]
        day = self.cleaned_data.get("expires_on")
        if day is not None and day <= timezone.now().date():
            raise forms.ValidationError("Pick a day after today.")
        if day is not None and day > timezone.now().date() + timedelta(days=3660):
            raise forms.ValidationError("Pick a day within ten years.")
        return day

    def expires_at(self) -> datetime | None:
        day = self.cleaned_data.get("expires_on")
        return None if day is None else datetime.combine(day, time.min, tzinfo=UTC)
