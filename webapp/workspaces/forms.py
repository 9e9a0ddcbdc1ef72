from __future__ import annotations

from django import forms

from webapp.workspaces.models import Project, Role


class TeamForm(forms.Form):
    name = forms.CharField(max_length=100, strip=True)


class ProjectForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = ("name", "description")
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}


class InviteForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
