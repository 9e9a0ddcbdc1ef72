from __future__ import annotations

from typing import Any

from django import forms

from webapp.usage.models import Interface, Metric


class UsageFilterForm(forms.Form):
    days = forms.TypedChoiceField(choices=[(30, "Last 30 days"), (90, "Last 90 days")], coerce=int, required=False,
                                  empty_value=None, label="Period")
    metric = forms.ChoiceField(choices=Metric.choices, required=False, label="Chart")
    member = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    project = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    model = forms.ChoiceField(required=False)
    key = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="API key")
    interface = forms.ChoiceField(required=False, choices=[("", "Web and API"), *Interface.choices])

    def __init__(self, *args: Any, choices: dict[str, list[tuple[Any, str]]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not choices["member"]:
            del self.fields["member"]
        for name, empty in (("member", "Anyone"), ("project", "Any project"), ("model", "Any model"),
                            ("key", "Any key")):
            field = self.fields.get(name)
            if isinstance(field, forms.ChoiceField):
                field.choices = [("", empty), *choices[name]]


class BudgetForm(forms.Form):
    """One budget: the services check the numbers (empty: no limit, 0: blocked) and name a bad one."""

    scope = forms.CharField(widget=forms.HiddenInput)  # "team", "project:<id>" or "member:<user id>"
    tokens = forms.CharField(required=False, max_length=20)
    images = forms.CharField(required=False, max_length=20)
    compute_seconds = forms.CharField(required=False, max_length=20, label="Compute seconds")


class TimeZoneForm(forms.Form):
    time_zone = forms.CharField(max_length=64, label="Time zone", help_text="Budget months begin at midnight here.")
