"""The edit page's mask canvas in a real browser: paint a mask with the mouse, run an inpaint job on
a real worker with the default model, and check the stored mask is the painted strokes, pixel for pixel."""
from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
from django.core.files.storage import default_storage
from PIL import Image
from playwright.sync_api import expect

from tests.factories import PASSWORD
from webapp.studio.models import Job

pytestmark = [pytest.mark.browser, pytest.mark.stack, pytest.mark.django_db(transaction=True)]

SIZE = 32
BRUSH = 4  # px: radius 2


def _log_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def _segment_distance(px: float, py: float, a: tuple[float, float], b: tuple[float, float]) -> float:
    dx, dy = b[0] - a[0], b[1] - a[1]
    t = max(0.0, min(1.0, ((px - a[0]) * dx + (py - a[1]) * dy) / (dx * dx + dy * dy)))
    return math.hypot(a[0] + t * dx - px, a[1] + t * dy - py)


def test_paint_a_mask_with_the_mouse_and_the_stored_mask_matches_the_strokes(
    asgi_server, celery_worker, new_page, project, bob, tmp_path: Path
):
    source = tmp_path / "source.png"
    pixels = np.zeros((SIZE, SIZE, 3), dtype=np.uint8)
    pixels[:, :] = (240, 240, 240)
    pixels[8:24, 8:24] = (200, 30, 30)
    Image.fromarray(pixels).save(source)

    page = new_page()
    _log_in(page, asgi_server, "bob")
    page.goto(f"{asgi_server}/projects/{project.pk}/studio/edit/")
    page.get_by_label("Image", exact=True).set_input_files(source)
    view = page.locator("canvas.mask-view")
    expect(view).to_be_visible()
    view.evaluate("c => c.scrollIntoView({block: 'center'})")
    box = view.bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= 900, "the whole canvas fits the window"
    zoom = box["width"] / SIZE
    assert zoom >= 8, "a 32 px image is shown zoomed in, to be comfortable to paint"
    assert view.evaluate("c => getComputedStyle(c).imageRendering") == "pixelated"

    def at(x: float, y: float) -> tuple[float, float]:
        return box["x"] + x * zoom, box["y"] + y * zoom

    page.locator("[data-brush-size]").fill(str(BRUSH))
    # A horizontal brush stroke, then a stray dab that undo removes, then a rectangle.
    a, b = (5.0, 6.0), (26.0, 6.0)
    page.mouse.move(*at(*a))
    page.mouse.down()
    page.mouse.move(*at(*b), steps=12)
    page.mouse.up()
    status = page.locator("[data-mask-status]")
    painted = status.text_content()
    page.mouse.move(*at(16.0, 28.0))
    page.mouse.down()
    page.mouse.up()
    expect(status).not_to_have_text(painted)
    page.get_by_role("button", name="Undo").click()
    expect(status).to_have_text(painted)
    page.get_by_role("button", name="Redo").click()
    expect(status).not_to_have_text(painted)
    page.get_by_role("button", name="Undo").click()
    expect(status).to_have_text(painted)
    page.get_by_role("button", name="Rectangle").click()
    r0, r1 = (10.0, 14.0), (22.0, 22.0)
    page.mouse.move(*at(*r0))
    page.mouse.down()
    page.mouse.move(*at(*r1), steps=6)
    page.mouse.up()
    expect(status).not_to_have_text(painted)
    painted = status.text_content()
    count = int(painted.split()[0])
    # Eraser, invert and clear, each undone: the mask sent is the stroke and the rectangle.
    page.get_by_role("button", name="Eraser").click()
    page.mouse.click(*at(16.0, 18.0))
    expect(status).to_have_text(f"{count - 12} of 1024 pixels masked")  # a radius-2 disc: 12 pixel centres
    page.get_by_role("button", name="Undo").click()
    page.get_by_role("button", name="Invert").click()
    expect(status).to_have_text(f"{SIZE * SIZE - count} of 1024 pixels masked")
    page.get_by_role("button", name="Clear").click()
    expect(status).to_have_text("0 of 1024 pixels masked")
    page.get_by_role("button", name="Undo").click()
    page.get_by_role("button", name="Undo").click()
    expect(status).to_have_text(painted)
    page.get_by_role("button", name="Zoom in").click()
    assert view.bounding_box()["width"] == 2 * box["width"]
    page.get_by_role("button", name="Zoom out").click()

    page.get_by_label("Mode", exact=True).select_option("inpaint")
    page.get_by_label("Prompt", exact=True).fill("a blue star")
    page.get_by_label("Steps").fill("8")
    page.get_by_label("Seed").fill("3")
    page.get_by_role("button", name="Edit", exact=True).click()

    card = page.locator(".job-card").first
    expect(card).to_contain_text("Done", timeout=120_000)
    page.reload()  # the result page shows the before/after slider once the job is done
    expect(page.get_by_alt_text("After")).to_be_visible()

    job = Job.objects.latest("pk")
    assert job.params["mode"] == "inpaint"
    with default_storage.open(job.edit_mask.name, "rb") as fh:
        stored = np.asarray(Image.open(io.BytesIO(fh.read())).convert("L")) > 127
    assert stored.shape == (SIZE, SIZE)

    # Pixel centres clearly inside a stroke are masked, those clearly outside are not; a pointer position
    # rounded to the CSS pixel moves a stroke by 1/zoom image pixels, so the edge is allowed that slack.
    slack = 1.5 / zoom
    inside, outside = [], []
    for y in range(SIZE):
        for x in range(SIZE):
            cx, cy = x + 0.5, y + 0.5
            d_brush = _segment_distance(cx, cy, a, b) - BRUSH / 2
            d_rect = max(r0[0] - cx, cx - r1[0], r0[1] - cy, cy - r1[1])
            d = min(d_brush, d_rect)
            if d < -slack:
                inside.append((y, x))
            elif d > slack:
                outside.append((y, x))
    assert all(stored[p] for p in inside), "a painted pixel is missing from the stored mask"
    assert not any(stored[p] for p in outside), "the stored mask has pixels nobody painted (or the undone dab)"
    assert len(inside) > 150 and stored.sum() >= len(inside)
    assert not stored[28, 16], "undo removed the dab"
