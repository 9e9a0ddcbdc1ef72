from __future__ import annotations

from django.apps import AppConfig


class StudioConfig(AppConfig):
    name = "webapp.studio"
    label = "studio"
    # What a project export carries (see webapp.workspaces.transfer), parents first.
    project_export = [("Job", "project"), ("Asset", "project")]
