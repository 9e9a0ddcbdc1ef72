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


def _diff(client, project, a, b):
    return client.get(reverse("studio:asset_diff", args=[project.pk, a.pk, b.pk]))


def test_diff_compares_two_images_of_a_chain_side_by_side_for_any_member(chain, project, bob, carol, client_for):
    original, _, second, sibling = chain
    Asset.objects.filter(pk=second.pk).update(params={**second.params, "strength": 0.4}, seed=77)
    response = _diff(client_for(carol), project, original, second)  # a viewer reads it too
    page = response.content.decode()
    assert response.status_code == 200
    rows = {row.label: row for row in selectors.asset_diff_rows(before=original, after=Asset.objects.get(pk=second.pk))}
    assert rows["Made as"].before == "original" and rows["Made as"].after == "img2img" and rows["Made as"].differs
    assert rows["Seed"].after == "77" and rows["Seed"].differs and rows["Strength"].after == "0.4"
    assert not rows["Model"].differs
    assert '<tr class="differs"><th>Seed</th>' in page and "<th>Model</th>" in page
    for asset in (original, second):  # both images under the slider
        assert reverse("studio:asset_image", args=[project.pk, asset.pk]) in page
    assert 'data-before-after="diff-' in page
    # Siblings share the original: one chain. The chain panel links to the Diff.
    assert _diff(client_for(bob), project, second, sibling).status_code == 200
    detail = client_for(bob).get(reverse("studio:asset_detail", args=[project.pk, second.pk])).content.decode()
    assert reverse("studio:asset_diff", args=[project.pk, original.pk, second.pk]) in detail


def test_diff_is_404_for_two_chains_for_one_image_and_for_an_outsider(chain, project, bob, mallory, make_image,
                                                                     client_for):
    original, first, _, _ = chain
    unrelated = make_image(project=project, author=bob)
    assert _diff(client_for(bob), project, original, unrelated).status_code == 404
    assert _diff(client_for(bob), project, first, first).status_code == 404
    outsider = client_for(mallory).get(reverse("studio:asset_diff", args=[project.pk, original.pk, first.pk]))
    assert outsider.status_code == 404
