"""Helpers for the studio tests: jobs made through the service, and fake engine results."""
from __future__ import annotations

from typing import Any

import pytest

from generation.image import ImageRequest, ImageResult
from tests.factories import membership_of
from webapp.studio import services
from webapp.studio.models import Job


def tiny_request(**overrides: Any) -> ImageRequest:
    params: dict[str, Any] = {"prompt": "a red circle", "steps": 4, "seed": 7, "width": 32, "height": 32}
    params.update(overrides)
    return ImageRequest(**params)


def fake_result(job: Job, *, colours: tuple[str, ...] = ("red",)) -> ImageResult:
    """What the engine would return for ``job``: plain-colour images and the params it used."""
    from PIL import Image

    params = {**job.params, "model_revision": "abc123", "sampler": "DPM++ 2M"}
    images = tuple(Image.new("RGB", (params["width"], params["height"]), colour) for colour in colours)
    return ImageResult(images=images, params=params, model=job.model_name, model_revision="abc123",
                       elapsed=0.1, seconds_per_step=0.02)


@pytest.fixture
def no_enqueue(monkeypatch):
    """Record enqueues instead of sending them to a broker."""
    from webapp.core import jobs

    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(
        jobs, "task_send", lambda name, **kwargs: sent.append({"name": name, **kwargs})
    )
    return sent


@pytest.fixture
def make_job(no_enqueue):
    def factory(*, project, author, **overrides: Any) -> Job:
        return services.job_create(project=project, membership=membership_of(author), request=tiny_request(**overrides))

    return factory
