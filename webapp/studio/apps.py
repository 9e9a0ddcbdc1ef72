from __future__ import annotations

from django.apps import AppConfig


class StudioConfig(AppConfig):
    name = "webapp.studio"
    label = "studio"

    def ready(self) -> None:
        from webapp.core.jobs import job_kind_register
        from webapp.studio.services import IMAGE_JOB

        job_kind_register(IMAGE_JOB)
