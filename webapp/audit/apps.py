from __future__ import annotations

from django.apps import AppConfig
from django.conf import settings


class AuditConfig(AppConfig):
    name = "webapp.audit"
    label = "audit"
    # What a project export carries (see webapp.workspaces.transfer). Import appends new entries (the
    # append-only guard allows inserts) whose plain ids point at the moved rows: the project, its team,
    # the actor (matched by username). object_id is remapped through the kinds that chat, studio and
    # reviews declare. ``detail`` is kept as written: its ids are the source installation's (history).
    project_export = [("AuditEntry", "project_id")]
    # An imported entry's detail gets "imported": the archive, its SHA-256, who imported it and when
    # (webapp.workspaces.transfer): actor and time are the archive's, the page says so.
    project_import_marks = [("AuditEntry", "detail")]
    project_export_refs = [
        ("audit.AuditEntry", None, "project_id", {None: "workspaces.Project"}),
        ("audit.AuditEntry", None, "team_id", {None: "workspaces.Team"}),
        ("audit.AuditEntry", None, "actor_id", {None: settings.AUTH_USER_MODEL}),
    ]
