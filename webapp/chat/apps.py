from __future__ import annotations

from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "webapp.chat"
    label = "chat"

    def ready(self) -> None:
        from webapp.chat.services import REPLY
        from webapp.core.jobs import job_kind_register

        job_kind_register(REPLY)
