from __future__ import annotations

from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    name = "webapp.knowledge"
    label = "knowledge"
    # A project export carries its documents (their files as media) and passages (with their vectors).
    project_export = [("Document", "project"), ("Passage", "project")]

    def ready(self) -> None:
        from webapp.core.jobs import job_kind_register
        from webapp.knowledge import signals  # noqa: F401
        from webapp.knowledge.services import INDEX_JOB

        job_kind_register(INDEX_JOB)
