from __future__ import annotations

from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "webapp.api"
    label = "api"
    verbose_name = "OpenAI-compatible API"

    def ready(self) -> None:
        from webapp.api.services.text import TEXT_JOB
        from webapp.core.jobs import job_kind_register

        job_kind_register(TEXT_JOB)

        from webapp.api import signals  # noqa: F401 - keys die with the membership that made them
