"""Channel-layer groups and events of the studio.

A user's progress events go to one group per (project, user): the consumer
derives the name from the URL's project (after a membership check) and the
authenticated user, never from anything the client sends.
"""
from __future__ import annotations

import base64
import io
from typing import Any


def studio_group_name(*, project_id: int, user_id: int) -> str:
    return f"studio_p{int(project_id)}_u{int(user_id)}"


def preview_data_url(image: Any) -> str:
    """A small PIL image as a ``data:`` PNG URL for the job card."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def job_state_publish(job: Any) -> None:
    """The job lifecycle's ``publish`` for image jobs: the author's studio page reloads the card."""
    from webapp.core.events import get_publisher

    if job.author_id is None:
        return
    group = studio_group_name(project_id=job.project_id, user_id=job.author_id)
    get_publisher().publish(group, {"type": "studio.job", "job_id": job.pk, "status": job.status})
