"""The live activity feed's group and event: one group per project, named from the project's id."""
from __future__ import annotations

from functools import partial

from django.db import transaction


def activity_group_name(*, project_id: int) -> str:
    return f"activity_p{int(project_id)}"


def _publish(project_id: int, record_id: int) -> None:
    from webapp.core.events import get_publisher

    get_publisher().publish(activity_group_name(project_id=project_id),
                            {"type": "activity.record", "record_id": record_id})


def activity_publish_after_commit(*, project_id: int | None, record_id: int) -> None:
    """Tell the project's activity pages about a new usage record once it is committed (state the
    database holds); the consumer renders it from the database."""
    if project_id is not None:
        transaction.on_commit(partial(_publish, project_id, record_id))
