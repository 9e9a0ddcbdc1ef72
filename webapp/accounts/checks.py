"""``manage.py check --deploy``: a site that anyone can claim is a deployment error."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register
from django.db import DatabaseError


@register(Tags.security, deploy=True)
def setup_token_off_without_an_account(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """While no account exists, whoever signs up first becomes the site's admin: only the token stops them."""
    if settings.ATELIER_SETUP_TOKEN_REQUIRED is not False:
        return []
    from webapp.accounts.models import User

    try:
        if User.objects.exists():
            return []
    except DatabaseError:  # not migrated yet: no account either
        pass
    return [Warning(
        "ATELIER_SETUP_TOKEN_REQUIRED=0 and no account exists: whoever signs up first becomes the site's admin.",
        hint="Unset ATELIER_SETUP_TOKEN_REQUIRED (or set it to 1) until the first account exists, "
             "and sign up with the link that `manage.py setup_token` prints.",
        id="accounts.W001",
    )]
