from __future__ import annotations

from typing import Any

from django import forms

from webapp.audit.models import AuditAction


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(required=False, choices=[("", "Any action"), *AuditAction.choices])
    actor = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Who")
    project = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, members: list[Any], projects: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        actor = self.fields["actor"]
        assert isinstance(actor, forms.ChoiceField)
        actor.choices = [("", "Anyone")] + [(m.user_id, m.user.username) for m in members]
        project = self.fields["project"]
        assert isinstance(project, forms.ChoiceField)
        project.choices = [("", "Any project")] + [(p.pk, p.name) for p in projects]
