"""Revise this region in a real browser: a region comment becomes an inpaint job on a real worker with the
default model, and its result the review's next version, which resolves the comment."""
from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.files.storage import default_storage
from PIL import Image
from playwright.sync_api import expect

from tests.factories import PASSWORD
from tests.helpers import membership
from webapp.reviews import services
from webapp.reviews.models import AssetKind, Comment, ReviewRequest
from webapp.reviews.services.reviews import Region
from webapp.studio.models import Job

pytestmark = [pytest.mark.browser, pytest.mark.stack, pytest.mark.django_db(transaction=True)]


def _log_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def test_revise_a_region_comment_through_to_the_next_version(
    asgi_server, celery_worker, new_page, project, image, alice, bob, carol
):
    (review,) = services.review_request_create(
        actor=membership(bob, project), project=project, kind=AssetKind.IMAGE, asset_ids=[image.pk],
        reviewer_ids=[alice.pk],
    )
    comment = services.comment_add(actor=membership(alice, project), review=review, text="a blue star here",
                                   region=Region(x=8, y=10, w=12, h=9))

    viewer = new_page()
    _log_in(viewer, asgi_server, "carol")
    viewer.goto(f"{asgi_server}{review.get_absolute_url()}")
    expect(viewer.locator(f"#comment-{comment.pk}")).to_contain_text("a blue star here")
    expect(viewer.get_by_role("button", name="Revise this region")).to_have_count(0)

    page = new_page()
    _log_in(page, asgi_server, "bob")
    page.goto(f"{asgi_server}{review.get_absolute_url()}")
    page.locator(f"#comment-{comment.pk}").get_by_role("button", name="Revise this region").click()
    expect(page.get_by_role("heading", name="Edit an image")).to_be_visible()
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a blue star here")
    expect(page.get_by_label("Mode", exact=True)).to_have_value("inpaint")
    expect(page.locator("[data-mask-status]")).to_have_text("108 of 1024 pixels masked")  # the 12 by 9 rectangle
    page.get_by_label("Steps").fill("8")
    page.get_by_label("Seed").fill("4")
    page.get_by_role("button", name="Edit", exact=True).click()

    expect(page.locator(".job-card").first).to_contain_text("Done", timeout=120_000)
    page.reload()
    job = Job.objects.latest("pk")
    with default_storage.open(job.edit_mask.name, "rb") as fh:
        mask = np.asarray(Image.open(io.BytesIO(fh.read())).convert("L")) > 127
    expected = np.zeros((32, 32), dtype=bool)
    expected[10:19, 8:20] = True
    assert np.array_equal(mask, expected)
    assert job.source_asset_id == image.pk

    page.get_by_role("button", name="Submit as the review's next version").click()
    expect(page.get_by_role("heading", name="Compare with v1")).to_be_visible()
    new = ReviewRequest.objects.get(previous=review)
    assert new.asset_id == job.assets.get().pk and new.version == 2
    assert Comment.objects.get(pk=comment.pk).resolved_in_id == new.pk

    reviewer = new_page()
    _log_in(reviewer, asgi_server, "alice")
    reviewer.goto(f"{asgi_server}{review.get_absolute_url()}")
    resolved = reviewer.locator(f"#comment-{comment.pk}")
    expect(resolved).to_contain_text("Resolved by bob in v2")
    resolved.get_by_role("link", name="v2").click()
    expect(reviewer.get_by_role("heading", name="Compare with v1")).to_be_visible()
    expect(reviewer.get_by_alt_text("v1")).to_be_visible()
    expect(reviewer.get_by_alt_text("v2")).to_be_visible()
