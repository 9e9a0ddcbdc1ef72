from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class PromptsConfig(AppConfig):
    name = "webapp.prompts"
    label = "prompts"
    # What a project export carries (see webapp.workspaces.transfer): model, path to its project.
    project_export = [("PromptRecord", "project")]

    def project_import_clean(self, obj: Any) -> None:
        """An imported prompt is bounded as ``prompt_record_create`` bounds it."""
        from webapp.core import bounds
        from webapp.prompts.models import PromptRecord

        if isinstance(obj, PromptRecord):
            bounds.check_lengths(text=(obj.text, bounds.PROMPT_TEXT))
