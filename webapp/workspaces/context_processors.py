from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def switcher(request: HttpRequest) -> dict[str, Any]:
    """The teams and projects for the header's switcher, loaded only when rendered."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    def teams() -> list[Any]:
        from webapp.workspaces.selectors import team_list_for_user

        return list(team_list_for_user(user=user))

    return {"switcher_teams": teams}
