from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "webapp.usage"
    label = "usage"
    # What a project export carries (webapp.workspaces.transfer): the project's usage records, so its
    # history survives a move. Team, project and user are foreign keys, remapped by themselves.
    project_export = [("UsageRecord", "project")]

    @property
    def project_export_refs(self) -> list[tuple[str, str | None, str, dict[str | None, str]]]:
        """A record's ``job_id`` is its job's new id after an import, by the kinds registered now (read at
        export and import time, when every app is ready). API keys never move: ``key_id`` empties, the name stays."""
        from webapp.core.jobs import job_kinds

        kinds: dict[str | None, str] = {kind.name: kind.model._meta.label for kind in job_kinds()}
        return [("usage.UsageRecord", "kind", "job_id", kinds),
                ("usage.UsageRecord", None, "key_id", {None: "api.ApiKey"})]

    def project_import_done(self, project: Any) -> None:
        """The imported records count in the new team's daily sums and month totals (the source team keeps
        its own: an import copies)."""
        from webapp.usage.services import usage_rollups_add_project

        usage_rollups_add_project(project_id=project.pk)

    def ready(self) -> None:
        from webapp.core.jobs import admission_register, job_finished
        from webapp.usage.services import budget_admit, usage_record_on_finish

        # The lifecycle sends it at every end of every kind: the usage record needs nothing from the kinds.
        job_finished.connect(usage_record_on_finish, dispatch_uid="usage.record_on_finish")
        # Budgets are checked where a job is accepted, beside the queue quotas.
        admission_register("usage.budgets", budget_admit)

        from webapp.core.metrics import metrics_collector_register
        from webapp.usage.metrics import UsageCollector

        metrics_collector_register("usage", UsageCollector())
