from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class StudioConfig(AppConfig):
    name = "webapp.studio"
    label = "studio"
    # What a project export carries (see webapp.workspaces.transfer), parents first.
    project_export = [("Job", "project"), ("Asset", "project")]
    # Ids of jobs and images kept without a foreign key in lower apps: import remaps them.
    project_export_refs = [
        ("prompt_templates.TemplateUse", "output_kind", "output_id", {"job": "studio.Job"}),
        ("audit.AuditEntry", "object_kind", "object_id", {"image": "studio.Asset"}),
    ]

    def project_import_clean(self, obj: Any) -> None:
        from webapp.studio.models import Asset
        from webapp.studio.services.assets import asset_import_clean

        if isinstance(obj, Asset):
            asset_import_clean(asset=obj)

    def ready(self) -> None:
        from webapp.core.jobs import job_kind_register
        from webapp.studio.services import IMAGE_JOB

        job_kind_register(IMAGE_JOB)

        # The template page lists what each version made; this app says how its outputs look.
        from webapp.prompt_templates.outputs import register_output_kind
        from webapp.studio.selectors import jobs_describe

        register_output_kind("job", jobs_describe)
