from __future__ import annotations

from django.apps import AppConfig


class PromptTemplatesConfig(AppConfig):
    name = "webapp.prompt_templates"
    label = "prompt_templates"
    verbose_name = "Prompt templates"
