from __future__ import annotations

from typing import Any

from django import forms

from webapp.prompts.models import PromptKind


class HistoryFilterForm(forms.Form):
    q = forms.CharField(required=False, label="Search", widget=forms.TextInput(attrs={"type": "search", "placeholder": "Search prompts"}))
    author = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Who")
    kind = forms.ChoiceField(required=False, choices=[("", "Any kind"), *PromptKind.choices])
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, members: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        author = self.fields["author"]
        assert isinstance(author, forms.TypedChoiceField)
        author.choices = [("", "Anyone")] + [(m.user_id, m.user.username) for m in members]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "“To” must be on or after “From”.")
        return data
