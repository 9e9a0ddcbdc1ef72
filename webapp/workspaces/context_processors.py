from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def switcher(request: HttpRequest) -> dict[str, Any]:
    """The teams and projects for the header's switcher, loaded only when rendered."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    loaded: list[list[Any]] = []

    def teams() -> list[Any]:
        """Loaded once per response: the switcher and the review sockets both read it."""
        from webapp.workspaces.selectors import team_list_for_user

        if not loaded:
            loaded.append(list(team_list_for_user(user=user)))
        return loaded[0]

    return {"switcher_teams": teams}
