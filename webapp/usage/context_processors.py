from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def budget_banner(request: HttpRequest) -> dict[str, Any]:
    """The 80% banner: this month's budget notices that bind the user, read only when a page renders them."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    def notices() -> list[Any]:
        from webapp.usage.selectors import budget_notices_for_member

        return budget_notices_for_member(user=user)

    return {"usage_budget_notices": notices}
