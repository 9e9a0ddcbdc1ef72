from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def review_inbox(request: HttpRequest) -> dict[str, Any]:
    """The nav badge: how many reviews wait for the user's verdict, counted only when rendered."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    def count() -> int:
        from webapp.reviews.selectors import inbox_count

        return inbox_count(user=user)

    return {"review_inbox_count": count}
