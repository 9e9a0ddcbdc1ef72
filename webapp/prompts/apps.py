from __future__ import annotations

from django.apps import AppConfig


class PromptsConfig(AppConfig):
    name = "webapp.prompts"
    label = "prompts"
    # What a project export carries (see webapp.workspaces.transfer): model, path to its project.
    project_export = [("PromptRecord", "project")]
