"""Reviews in a real browser: the real ASGI server, a real worker, the default image model.

bob makes an image and asks alice; carol pins a region comment and gives no
verdict; alice requests changes; bob varies, the review moves to v2; alice
approves v2 while both inboxes update live; mallory gets 404 everywhere; the
export zip holds v2 and a manifest whose lineage matches the PNG's metadata.
"""
from __future__ import annotations

import io
import json
import os
import re
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from generation.image import read_png_metadata
from tests.factories import PASSWORD
from webapp.reviews.models import ReviewRequest
from webapp.studio.models import Asset

pytestmark = [pytest.mark.browser, pytest.mark.stack, pytest.mark.django_db(transaction=True)]


def _log_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def _ws_ready(page) -> None:
    page.wait_for_function("() => window.htmx && document.querySelector('[ws-connect]')")
    page.wait_for_timeout(500)  # the socket opens right after load


def test_review_round_trip_with_live_inboxes_and_an_export(
    asgi_server, celery_worker, new_page, project, alice, bob, carol, mallory, other_project, tmp_path: Path
):
    base = asgi_server
    # 1. bob makes an image and asks alice to review it.
    bob_page = new_page()
    _log_in(bob_page, base, "bob")
    bob_page.goto(f"{base}/projects/{project.pk}/studio/")
    bob_page.get_by_label("Prompt", exact=True).fill("a red circle")
    bob_page.get_by_label("Steps").fill("8")
    bob_page.get_by_label("Seed").fill("3")
    bob_page.get_by_role("button", name="Generate").click()
    thumbnail = bob_page.get_by_alt_text(re.compile(r"Image 1 of job \d+"))
    expect(thumbnail).to_be_visible(timeout=180_000)
    thumbnail.click()
    bob_page.get_by_label("alice", exact=True).check()
    bob_page.get_by_role("button", name="Ask for review").click()
    expect(bob_page.locator(".review-state")).to_have_text("In review")
    v1_url = bob_page.url
    v1 = ReviewRequest.objects.get()

    bob_inbox = bob_page.context.new_page()
    bob_inbox.goto(f"{base}/reviews/")
    expect(bob_inbox.locator("#inbox-submitted")).to_contain_text("In review")
    _ws_ready(bob_inbox)

    # 2. carol pins a region comment and cannot give a verdict.
    carol_page = new_page()
    _log_in(carol_page, base, "carol")
    carol_page.goto(v1_url)
    expect(carol_page.locator("form.verdict-form")).to_have_count(0)
    expect(carol_page.get_by_text("not give verdicts")).to_be_visible()
    box = carol_page.locator(".region-canvas img").bounding_box()
    carol_page.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.25)
    carol_page.mouse.down()
    carol_page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.4, steps=5)
    carol_page.mouse.move(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.75, steps=5)
    carol_page.mouse.up()
    expect(carol_page.get_by_text("Pinned to a region")).to_be_visible()
    carol_page.locator("form.comment-form textarea[name=text]").fill("The **edge** is soft here")
    carol_page.locator("form.comment-form").get_by_role("button", name="Comment").click()
    expect(carol_page.locator(".comment")).to_contain_text("The edge is soft here")
    expect(carol_page.locator(".region[data-x]")).to_have_count(1)
    region = carol_page.locator(".region[data-x]")
    assert [int(region.get_attribute(f"data-{k}")) for k in "xywh"] == [8, 8, 16, 16]
    refused = carol_page.evaluate(
        """async (url) => {
             const token = document.querySelector('input[name=csrfmiddlewaretoken]').value;
             const body = new URLSearchParams({csrfmiddlewaretoken: token, decision: 'approve'});
             return (await fetch(url + 'verdict/', {method: 'POST', body})).status;
           }""",
        v1_url,
    )
    assert refused == 403

    # 3. alice requests changes; bob's inbox shows it live.
    alice_inbox = new_page()
    _log_in(alice_inbox, base, "alice")
    alice_inbox.goto(f"{base}/reviews/")
    expect(alice_inbox.locator("#inbox-waiting")).to_contain_text(f"Image {v1.asset_id}")
    expect(alice_inbox.locator("#review-badge")).to_have_text("1")
    _ws_ready(alice_inbox)
    alice_page = alice_inbox.context.new_page()
    alice_page.goto(v1_url)
    verdict = alice_page.locator("form.verdict-form")
    verdict.get_by_label("Request changes").check()
    verdict.get_by_label("Comment").fill("Try another seed")
    verdict.get_by_role("button", name="Submit verdict").click()
    expect(alice_page.locator(".review-state").first).to_have_text("Changes requested")
    expect(bob_inbox.locator("#inbox-submitted")).to_contain_text("Changes requested")
    expect(alice_inbox.locator("#inbox-waiting")).to_contain_text("Nothing waits for you")

    # 4. bob varies; the review moves to v2 (both inboxes hear it).
    bob_page.goto(v1_url)
    bob_page.get_by_role("button", name="Vary").click()
    expect(bob_page.get_by_text("Making the next version")).to_be_visible()
    expect(bob_inbox.locator("#inbox-submitted")).to_contain_text("(v2)", timeout=180_000)
    expect(alice_inbox.locator("#inbox-waiting")).to_contain_text("(v2)")
    expect(alice_inbox.locator("#review-badge")).to_have_text("1")
    v2 = ReviewRequest.objects.get(previous=v1)
    bob_page.reload()
    expect(bob_page.get_by_text("This version was replaced")).to_be_visible()
    expect(bob_page.locator(".version-chain")).to_contain_text("v2")
    expect(bob_page.locator(".comment")).to_contain_text("The edge is soft here")

    # 5. alice approves v2; both inboxes update live.
    alice_page.goto(base + alice_inbox.locator("#inbox-waiting a").first.get_attribute("href"))
    expect(alice_page.locator(".version-chain")).to_contain_text("v1")
    alice_page.locator("form.verdict-form").get_by_label("Approve").check()
    alice_page.locator("form.verdict-form").get_by_role("button", name="Submit verdict").click()
    expect(alice_page.locator(".review-state").first).to_have_text("Approved")
    expect(bob_inbox.locator("#inbox-submitted li").first).to_contain_text("Approved")
    expect(bob_inbox.locator("#inbox-submitted li").first).to_contain_text("(v2)")
    expect(alice_inbox.locator("#review-badge")).to_have_text("0")
    expect(alice_inbox.locator("#inbox-waiting")).to_contain_text("Nothing waits for you")
    if os.environ.get("ATELIER_SCREENSHOT_DIR"):
        alice_page.goto(v1_url)
        alice_page.locator(".region-link").first.hover()
        alice_page.evaluate("window.scrollTo(0, 0)")
        alice_page.screenshot(path=str(Path(os.environ["ATELIER_SCREENSHOT_DIR"]) / "review.png"), full_page=True)

    # 6. mallory gets 404 everywhere.
    mallory_page = new_page()
    _log_in(mallory_page, base, "mallory")
    p = project.pk
    for path in [
        f"/projects/{p}/reviews/", f"/projects/{p}/reviews/{v1.pk}/", f"/projects/{p}/reviews/{v2.pk}/",
        f"/projects/{p}/reviews/asset/image/{v2.asset_id}/", f"/projects/{p}/gallery/{v2.asset_id}/",
        f"/projects/{other_project.pk}/reviews/{v2.pk}/",
    ]:
        assert mallory_page.goto(f"{base}{path}").status == 404, path
        assert "Launch" not in mallory_page.content() and "a red circle" not in mallory_page.content()

    # 7. bob exports the approved set: v2, with a manifest matching the PNG's own metadata.
    bob_page.goto(f"{base}/projects/{p}/reviews/")
    bob_page.get_by_role("button", name="Export approved images").click()
    download_link = bob_page.get_by_role("link", name="Download zip")
    expect(download_link).to_be_visible(timeout=60_000)
    with bob_page.expect_download() as info:
        download_link.click()
    path = tmp_path / "approved.zip"
    info.value.save_as(path)
    archive = zipfile.ZipFile(path)
    v2_asset = Asset.objects.get(pk=v2.asset_id)
    pngs = [n for n in archive.namelist() if n.endswith(".png")]
    assert pngs == [f"images/v2-image{v2_asset.pk}-seed{v2_asset.seed}.png"]
    (entry,) = json.loads(archive.read("manifest.json"))["files"]
    embedded = read_png_metadata(io.BytesIO(archive.read(pngs[0])))["params"]
    for key, embedded_key in [("prompt", "prompt"), ("seed", "seed"), ("steps", "steps"), ("scheduler", "scheduler"),
                              ("guidance_scale", "guidance_scale"), ("model", "model"),
                              ("weights_hash", "model_revision"), ("width", "width"), ("height", "height")]:
        assert entry[key] == embedded[embedded_key], key
    assert entry["version"] == 2 and [a["by"] for a in entry["approvals"]] == ["alice"]
    assert "alice" in archive.read("manifest.csv").decode()
