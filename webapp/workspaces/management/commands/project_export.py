"""``manage.py project_export <project id> [archive]``: a project's rows and media in one archive."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = ("Export a project (chats, prompts, studio images, templates, reviews, audit trail: rows and media) "
            "to one .tar.gz archive, for project_import elsewhere. API keys are not exported: secrets stay behind.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project_id", type=int)
        parser.add_argument("archive", nargs="?", help="Where to write (default: ./atelier-project-<id>-<time>.tar.gz)")

    def handle(self, *args: Any, **options: Any) -> None:
        from webapp.workspaces.models import Project
        from webapp.workspaces.transfer import default_archive_name, project_export

        project = Project.objects.select_related("team").filter(pk=options["project_id"]).first()
        if project is None:
            raise CommandError(f"project_id: no project {options['project_id']}.")
        path = Path(options["archive"] or default_archive_name(project))
        summary = project_export(project=project, path=path)
        rows = ", ".join(f"{n} {label}" for label, n in summary.rows.items())
        self.stdout.write(f"Exported project {project.pk} ({project.name!r}) to {path}: {rows}; "
                          f"{summary.files} files, {summary.bytes} bytes.")
