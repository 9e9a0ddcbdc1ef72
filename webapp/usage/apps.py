from __future__ import annotations

from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "webapp.usage"
    label = "usage"

    def ready(self) -> None:
        from webapp.core.jobs import admission_register, job_finished
        from webapp.usage.services import budget_admit, usage_record_on_finish

        # The lifecycle sends it at every end of every kind: the usage record needs nothing from the kinds.
        job_finished.connect(usage_record_on_finish, dispatch_uid="usage.record_on_finish")
        # Budgets are checked where a job is accepted, beside the queue quotas.
        admission_register("usage.budgets", budget_admit)
