from __future__ import annotations

from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "webapp.chat"
    label = "chat"

    def ready(self) -> None:
        from webapp.chat.services import REPLY
        from webapp.core.jobs import job_kind_register

        job_kind_register(REPLY)

        # The template page lists what each version made; this app says how its outputs look.
        from webapp.chat.selectors import replies_describe
        from webapp.prompt_templates.outputs import register_output_kind

        register_output_kind("reply", replies_describe)
