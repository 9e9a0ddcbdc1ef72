"""Edit jobs on the real stack: Redis, a real Celery worker, the default image model."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.files.storage import default_storage
from PIL import Image

from generation.image import EditRequest, ImageRequest, generate_images, read_png_metadata, save_png
from tests.factories import membership_of
from tests.helpers import wait_for
from webapp.core.jobs import JobStatus
from webapp.studio import services
from webapp.studio.models import Job

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]

JOB_TIMEOUT = 180  # the worker may still be loading the model for the first job


def _ended(job: Job) -> Job:
    return wait_for(
        lambda: (fresh := Job.objects.get(pk=job.pk)).status not in ("queued", "running") and fresh,
        JOB_TIMEOUT, f"edit job {job.pk} to end",
    )


def _source() -> tuple[np.ndarray, bytes]:
    image = generate_images(ImageRequest(prompt="a large red circle on a white background", seed=5, steps=20)).images[0]
    buffer = io.BytesIO()
    save_png(image, buffer, {"prompt": "a large red circle on a white background"})
    return np.asarray(image), buffer.getvalue()


def test_an_inpaint_job_runs_on_a_worker_and_keeps_the_outside_bit_identical(project, bob, celery_worker):
    pixels, data = _source()
    mask = np.zeros((32, 32), dtype=np.uint8)
    mask[4:28, 4:28] = 255
    buffer = io.BytesIO()
    Image.fromarray(mask).save(buffer, format="PNG")
    job = services.edit_job_create(
        project=project, actor=membership_of(bob),
        request=EditRequest(mode="inpaint", source=data, mask=buffer.getvalue(), prompt="a large blue star on a white background",
                            steps=12, seed=2, mask_blur=2),
    )  # fmt: skip

    job = _ended(job)

    assert job.status == JobStatus.DONE, job.reason
    asset = job.assets.get()
    assert (asset.edit_mode, asset.mask.name, asset.parent_id) == ("inpaint", job.edit_mask.name, None)
    with default_storage.open(asset.file.name, "rb") as fh:
        stored = fh.read()
    out = np.asarray(Image.open(io.BytesIO(stored)).convert("RGB"))
    assert np.array_equal(out[mask == 0], pixels[mask == 0])
    assert not np.array_equal(out[mask > 0], pixels[mask > 0])
    params = read_png_metadata(io.BytesIO(stored))
    assert "Mode: inpaint" in params["parameters"] and f"Mask hash: {job.params['mask_hash']}" in params["parameters"]
    assert job.seconds_per_step and job.seconds_per_step > 0


def test_an_img2img_edit_of_an_asset_records_it_as_its_parent(project, bob, celery_worker):
    _, data = _source()
    first = services.edit_job_create(
        project=project, actor=membership_of(bob),
        request=EditRequest(mode="upscale", source=data, prompt="a large red circle on a white background", steps=10, seed=1),
    )  # fmt: skip
    first = _ended(first)
    assert first.status == JobStatus.DONE, first.reason
    parent = first.assets.get()
    assert (parent.width, parent.height, parent.edit_mode) == (64, 64, "upscale")

    with default_storage.open(parent.file.name, "rb") as fh:
        source = fh.read()
    second = services.edit_job_create(
        project=project, actor=membership_of(bob), source_asset=parent,
        request=EditRequest(mode="img2img", source=source, prompt="a large red circle on a white background", steps=10,
                            strength=0.4),
    )  # fmt: skip
    second = _ended(second)

    assert second.status == JobStatus.DONE, second.reason
    child = second.assets.get()
    assert (child.parent, child.edit_mode, child.width) == (parent, "img2img", 64)
