"""The studio in a real browser: the real ASGI server, a real worker, the default image model."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from generation.image import read_png_metadata
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.stack, pytest.mark.django_db(transaction=True)]

# Records what the job card shows as htmx swaps in the websocket's fragments.
WATCH_CARD = """
window.seen = {steps: [], previews: []};
new MutationObserver(() => {
  const step = document.querySelector('.job-progress .step');
  const preview = document.querySelector('img.preview:not([hidden])');
  if (step && window.seen.steps.at(-1) !== step.textContent) window.seen.steps.push(step.textContent);
  if (preview && window.seen.previews.at(-1) !== preview.src) window.seen.previews.push(preview.src);
}).observe(document.getElementById('job-list'), {childList: true, subtree: true, attributes: true});
"""


def _log_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_submit_watch_progress_find_the_image_in_the_gallery_and_download_it(
    asgi_server, celery_worker, new_page, project, bob, tmp_path: Path
):
    page = new_page()
    _log_in(page, asgi_server, "bob")
    page.goto(f"{asgi_server}/projects/{project.pk}/studio/")
    page.wait_for_function("() => document.querySelector('[ws-connect]') && htmx")
    page.evaluate(WATCH_CARD)

    page.get_by_label("Prompt", exact=True).fill("a red circle")
    page.get_by_label("Steps").fill("40")
    page.get_by_label("Seed").fill("5")
    page.get_by_role("button", name="Generate").click()

    card = page.locator(".job-card").first
    expect(card).to_contain_text("a red circle")
    expect(card.get_by_alt_text(re.compile(r"Image 1 of job \d+"))).to_be_visible(timeout=120_000)
    expect(card).to_contain_text("Done")
    seen = page.evaluate("window.seen")
    steps = [int(re.search(r"Step (\d+) of 40", text).group(1)) for text in seen["steps"] if "of 40" in text]
    assert len(steps) >= 3 and steps == sorted(steps), seen["steps"]
    assert len(seen["previews"]) >= 2, "the preview should update while denoising"
    assert all(src.startswith("data:image/png;base64,") for src in seen["previews"])

    page.get_by_role("link", name="Gallery", exact=True).click()
    thumbnail = page.locator(".gallery-item").first
    expect(thumbnail).to_be_visible()
    thumbnail.click()
    expect(page.get_by_role("heading", name="Lineage")).to_be_visible()
    lineage = page.locator("table.lineage")
    expect(lineage).to_contain_text("atelier-shapes")
    expect(lineage.locator("tr", has_text="Seed")).to_contain_text("5")
    # decode() waits for the file (from S3 in the scaled setup, which takes a moment).
    image_loaded = page.locator(".asset-image img").evaluate("img => img.decode().then(() => img.naturalWidth)")
    assert image_loaded == 32

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download PNG").click()
    download = download_info.value
    assert download.suggested_filename.endswith("-seed5.png")
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    params = read_png_metadata(path)["params"]
    assert (params["prompt"], params["seed"], params["steps"]) == ("a red circle", 5, 40)
