from __future__ import annotations

from django.apps import AppConfig


class PromptTemplatesConfig(AppConfig):
    name = "webapp.prompt_templates"
    label = "prompt_templates"
    verbose_name = "Prompt templates"
    # What a project export carries (see webapp.workspaces.transfer), parents first. A use's output
    # (output_kind, output_id) is remapped through the declarations of chat and studio, which own the kinds.
    project_export = [("PromptTemplate", "project"), ("TemplateVersion", "template__project"), ("TemplateUse", "project")]
