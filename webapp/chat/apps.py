from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "webapp.chat"
    label = "chat"
    # What a project export carries (see webapp.workspaces.transfer), parents first.
    project_export = [("Conversation", "project"), ("Message", "conversation__project")]
    # Ids of replies kept without a foreign key in lower apps: import remaps them to the new replies.
    project_export_refs = [
        ("prompt_templates.TemplateUse", "output_kind", "output_id", {"reply": "chat.Message"}),
        ("audit.AuditEntry", "object_kind", "object_id", {"reply": "chat.Message"}),
    ]

    def project_import_clean(self, obj: Any) -> None:
        """An imported message's HTML is rendered here from its text: the archive's is never trusted
        (the page shows it unescaped)."""
        from webapp.chat.markdown import render_markdown
        from webapp.chat.models import Conversation, Message
        from webapp.core import bounds

        if isinstance(obj, Conversation):
            bounds.check_lengths(system_prompt=(obj.system_prompt, bounds.SYSTEM_PROMPT))
        if isinstance(obj, Message):
            bounds.check_lengths(system_prompt=(obj.system_prompt, bounds.SYSTEM_PROMPT))
            if obj.role == "user":  # what people type is bounded; replies are bounded by their token limit
                bounds.check_lengths(text=(obj.text, bounds.MESSAGE_TEXT))
            obj.html = render_markdown(obj.text)

    def ready(self) -> None:
        from webapp.chat.services import REPLY
        from webapp.core.jobs import job_kind_register

        job_kind_register(REPLY)

        # The template page lists what each version made; this app says how its outputs look.
        from webapp.chat.selectors import replies_describe
        from webapp.prompt_templates.outputs import register_output_kind

        register_output_kind("reply", replies_describe)
