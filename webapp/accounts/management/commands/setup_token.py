"""Prints the first-run setup link (as Jupyter prints its token) while the site has no account yet."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from webapp.accounts.services import setup_token, setup_token_needed


class Command(BaseCommand):
    help = "Print the one-time setup link for the first account, if this install needs one."

    def handle(self, *args: Any, **options: Any) -> None:
        if not setup_token_needed():
            return
        host = settings.ATELIER_HOST
        if host in {"0.0.0.0", "::", ""}:  # noqa: S104 - compared, not bound
            host = "<this machine's address>"
        url = f"http://{host}:{settings.ATELIER_PORT}/accounts/signup/?setup={setup_token()}"
        self.stdout.write(
            "\n  First run: create the admin account with this one-time link:\n"
            f"\n      {url}\n\n  (the token is in var/setup_token until the first account exists)\n"
        )
