"""``manage.py project_import <archive> [--team-id N] [--name NAME] [--by USERNAME]``: a project from project_export."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = ("Import a project archive written by project_export, with new ids, into this installation. "
            "API keys never travel: members make new ones here.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("archive")
        parser.add_argument("--team-id", type=int, help="Into this existing team (default: a new team as exported)")
        parser.add_argument("--name", help="The project's name here (default: as exported)")
        parser.add_argument("--by", help="The user of this site who runs the import (recorded with it; "
                                         "default: the operating-system user)")

    def handle(self, *args: Any, **options: Any) -> None:
        from webapp.workspaces.models import Team
        from webapp.workspaces.transfer import project_import

        path = Path(options["archive"])
        if not path.is_file():
            raise CommandError(f"archive: no file at {path}.")
        team = None
        if options["team_id"] is not None:
            team = Team.objects.filter(pk=options["team_id"]).first()
            if team is None:
                raise CommandError(f"team_id: no team {options['team_id']}.")
        actor = None
        if options["by"]:
            from django.contrib.auth import get_user_model

            actor = get_user_model()._default_manager.filter(username=options["by"]).first()
            if actor is None:
                raise CommandError(f"by: no user {options['by']!r}.")
        try:
            project = project_import(path=path, team=team, name=options["name"], actor=actor)
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from exc
        self.stdout.write(f"Imported project {project.pk} ({project.name!r}) into team {project.team_id}.")
