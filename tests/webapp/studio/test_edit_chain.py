"""The lineage panel's edit chain (original -> edit -> edit) and the Edit links on job cards and review pages."""
from __future__ import annotations

import pytest
from django.urls import reverse

from tests.helpers import membership
from webapp.reviews import services as reviews
from webapp.reviews.models import AssetKind
from webapp.studio import selectors
from webapp.studio.models import Asset

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain(make_image, project, bob, image):
    """image -> first (inpaint) -> second (img2img), and a sibling edit of first (upscale)."""
    made = []
    for parent, mode in ((image, "inpaint"), (None, "img2img"), (None, "upscale")):
        asset = make_image(project=project, author=bob)
        Asset.objects.filter(pk=asset.pk).update(parent=parent or made[0], edit_mode=mode)
        made.append(Asset.objects.get(pk=asset.pk))
    return [image, *made]


def test_the_chain_runs_from_the_original_to_the_asset_and_lists_its_edits(chain):
    original, first, second, sibling = chain
    assert selectors.asset_edit_chain(asset=second) == ([original, first, second], [])
    assert selectors.asset_edit_chain(asset=first) == ([original, first], [second, sibling])
    assert selectors.asset_edit_chain(asset=original) == ([original], [first])


def test_a_cycle_or_another_projects_parent_ends_the_walk(chain, make_image, other_project, mallory):
    original, first, _, _ = chain
    Asset.objects.filter(pk=original.pk).update(parent=first)  # a corrupt cycle must not loop
    path, _ = selectors.asset_edit_chain(asset=Asset.objects.get(pk=first.pk))
    assert [a.pk for a in path] == [original.pk, first.pk]
    foreign = make_image(project=other_project, author=mallory)
    Asset.objects.filter(pk=original.pk).update(parent=foreign)
    path, _ = selectors.asset_edit_chain(asset=Asset.objects.get(pk=first.pk))
    assert foreign.pk not in [a.pk for a in path]


def test_the_asset_page_shows_the_chain_with_edit_links_to_members_who_write(chain, project, bob, carol, client_for,
                                                                            make_image):
    original, first, second, _ = chain
    page = client_for(bob).get(reverse("studio:asset_detail", args=[project.pk, second.pk])).content.decode()
    assert "Edit chain" in page
    positions = [page.index(f'alt="Chain image {a.pk}"') for a in (original, first, second)]
    assert positions == sorted(positions)
    assert f"?asset={first.pk}\">Edit</a>" in page
    viewer = client_for(carol).get(reverse("studio:asset_detail", args=[project.pk, second.pk])).content.decode()
    assert "Edit chain" in viewer and f"?asset={first.pk}\">Edit</a>" not in viewer
    alone = make_image(project=project, author=bob)
    assert "Edit chain" not in client_for(bob).get(reverse("studio:asset_detail", args=[project.pk, alone.pk])).content.decode()


def test_job_cards_and_review_pages_link_to_edit(image, project, alice, bob, client_for):
    edit_url = f"{reverse('studio:edit', args=[project.pk])}?asset={image.pk}"
    studio = client_for(bob).get(reverse("studio:index", args=[project.pk])).content.decode()
    assert edit_url in studio
    (review,) = reviews.review_request_create(actor=membership(bob, project), project=project,
                                              kind=AssetKind.IMAGE, asset_ids=[image.pk], reviewer_ids=[alice.pk])
    assert edit_url in client_for(bob).get(review.get_absolute_url()).content.decode()
