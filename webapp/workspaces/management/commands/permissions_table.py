"""``manage.py permissions_table``: the permission table as Markdown, for the README's "Permissions" section."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from webapp.workspaces.permissions import permissions_table_markdown


class Command(BaseCommand):
    help = "Print what each role may do (webapp.workspaces.permissions) as the README's Markdown table."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(permissions_table_markdown(), ending="")
