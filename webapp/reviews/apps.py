from __future__ import annotations

from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "webapp.reviews"
    label = "reviews"
    # What a project export carries (see webapp.workspaces.transfer), parents first.
    project_export = [("ReviewRound", "project"), ("ReviewRequest", "project"), ("Verdict", "review__project"),
                      ("Comment", "review__project"), ("ApprovedExport", "project")]
    # A request's asset is a (kind, id) pair (kinds.py); audit entries name exports by id.
    project_export_refs = [
        ("reviews.ReviewRequest", "asset_kind", "asset_id", {"image": "studio.Asset", "reply": "chat.Message"}),
        ("audit.AuditEntry", "object_kind", "object_id", {"export": "reviews.ApprovedExport"}),
    ]
    # The built zip of an export is a storage name in a plain field: it travels as media.
    project_export_media = [("ApprovedExport", "file")]
    # Imported verdicts and comments point at their ProjectImport (the archive, who ran it, when).
    project_import_marks = [("Verdict", "imported_from"), ("Comment", "imported_from")]

    def ready(self) -> None:
        # reviews sits above studio: it listens to studio's rows, studio never imports reviews.
        from webapp.core.jobs import job_kind_register
        from webapp.reviews import signals  # noqa: F401
        from webapp.reviews.services.exports import EXPORT_JOB

        job_kind_register(EXPORT_JOB)
