"""Channel-layer groups and events of reviews: one group per (project, user), for the inbox and the badge.

An event only says which review changed; the consumer re-reads the user's
inbox through the membership-scoped selectors, so access is checked again on
every event.
"""
from __future__ import annotations

from collections.abc import Iterable

from webapp.core.events import get_publisher


def inbox_group_name(*, project_id: int, user_id: int) -> str:
    return f"reviews_p{int(project_id)}_u{int(user_id)}"


def publish_review_changed(*, review_id: int, project_id: int, user_ids: Iterable[int]) -> None:
    publisher = get_publisher()
    for user_id in sorted(set(user_ids)):
        group = inbox_group_name(project_id=project_id, user_id=user_id)
        publisher.publish(group, {"type": "reviews.changed", "review_id": review_id})
