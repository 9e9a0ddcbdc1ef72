from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class PromptTemplatesConfig(AppConfig):
    name = "webapp.prompt_templates"
    label = "prompt_templates"
    verbose_name = "Prompt templates"
    # What a project export carries (see webapp.workspaces.transfer), parents first. A use's output
    # (output_kind, output_id) is remapped through the declarations of chat and studio, which own the kinds.
    project_export = [("PromptTemplate", "project"), ("TemplateVersion", "template__project"), ("TemplateUse", "project")]
    # Audit entries name a published template by id (``template_published``): an import remaps them.
    project_export_refs = [
        ("audit.AuditEntry", "object_kind", "object_id", {"template": "prompt_templates.PromptTemplate"}),
    ]

    def project_import_clean(self, obj: Any) -> None:
        """An imported version's body must parse and its pinned settings pass, as when it was saved."""
        from webapp.prompt_templates.models import TemplateVersion
        from webapp.prompt_templates.pinned import settings_clean
        from webapp.prompt_templates.services import body_check

        if isinstance(obj, TemplateVersion):
            body_check(body=obj.body, kind=obj.template.kind)
            settings_clean(kind=obj.template.kind, settings=obj.settings or {})
