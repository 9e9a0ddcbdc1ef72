from __future__ import annotations

from django import forms


class DocumentForm(forms.Form):
    file = forms.FileField(label="File", help_text="Text, Markdown, HTML, PDF or .docx.")
    title = forms.CharField(max_length=200, required=False, help_text="Defaults to the file's name.")
