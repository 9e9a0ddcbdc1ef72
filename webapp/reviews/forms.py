from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from webapp.reviews.models import Decision
from webapp.reviews.services import Region
from webapp.workspaces.permissions import membership_may


class ReviewRequestForm(forms.Form):
    reviewers = forms.TypedMultipleChoiceField(
        required=False, coerce=int, widget=forms.CheckboxSelectMultiple,
        help_text="Members of the team who can give verdicts.",
    )
    anyone = forms.BooleanField(required=False, label="Anyone in the project")
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, members: list[Any], exclude_user_id: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["reviewers"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(m.user_id, m.user.get_username()) for m in members
                         if membership_may(actor=m, action="reviews.decide") and m.user_id != exclude_user_id]


class VerdictForm(forms.Form):
    decision = forms.ChoiceField(choices=Decision.choices, widget=forms.RadioSelect)
    comment = forms.CharField(required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 3}),
                              help_text="Required when you request changes.")


class CommentForm(forms.Form):
    text = forms.CharField(max_length=5000, widget=forms.Textarea(attrs={"rows": 3}), label="Comment",
                           help_text="Markdown. Drag on the image to pin the comment to a region.")
    parent = forms.IntegerField(required=False, widget=forms.HiddenInput)
    region_x = forms.IntegerField(required=False, widget=forms.HiddenInput)
    region_y = forms.IntegerField(required=False, widget=forms.HiddenInput)
    region_w = forms.IntegerField(required=False, widget=forms.HiddenInput)
    region_h = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        values = [data.get(f"region_{k}") for k in "xywh"]
        if all(v is None for v in values):
            data["region"] = None
        elif any(v is None for v in values):
            raise ValidationError("A region needs x, y, width and height.")
        else:
            data["region"] = Region(*[int(v) for v in values])  # type: ignore[arg-type]
        return data


class IterateForm(forms.Form):
    mode = forms.ChoiceField(choices=[("vary", "Vary"), ("rerun", "Re-run with changes")])
    prompt = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="For a re-run: the changed prompt (empty keeps it).")


class ExportForm(forms.Form):
    round = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
