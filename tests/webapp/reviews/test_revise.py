"""'Revise this region': a region comment opens the studio's edit mode; an edit's image becomes the next version."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from tests.helpers import membership
from webapp.audit.models import AuditEntry
from webapp.reviews import services
from webapp.reviews.models import AssetKind, Comment, ReviewRequest
from webapp.reviews.services.reviews import Region
from webapp.studio.models import Asset

pytestmark = pytest.mark.django_db


@pytest.fixture
def review(project, image, alice, bob):
    (review,) = services.review_request_create(
        actor=membership(bob, project), project=project, kind=AssetKind.IMAGE, asset_ids=[image.pk],
        reviewer_ids=[alice.pk],
    )
    return review


@pytest.fixture
def region_comment(review, alice):
    return services.comment_add(actor=membership(alice, review.project), review=review, text="make this star red",
                                region=Region(x=4, y=6, w=10, h=8))


@pytest.fixture
def edit(make_image, project, bob, image):
    """An image made by editing the reviewed one (its lineage names it as parent)."""
    edited = make_image(project=project, author=bob)
    Asset.objects.filter(pk=edited.pk).update(parent=image, edit_mode="inpaint")
    return Asset.objects.get(pk=edited.pk)


def _urls(project, review, comment) -> dict[str, str]:
    return {name: reverse(name, args=[project.pk, review.pk, comment.pk])
            for name in ("reviews:comment_revise", "reviews:comment_revision")}


def test_revise_opens_edit_mode_with_the_rectangle_as_mask_and_the_text_as_prompt(
    project, review, region_comment, image, bob, client_for
):
    client = client_for(bob)
    response = client.post(_urls(project, review, region_comment)["reviews:comment_revise"])
    assert response.status_code == 302
    url = urlsplit(response["Location"])
    assert url.path == reverse("studio:edit", args=[project.pk])
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query == {"asset": str(image.pk), "mode": "inpaint", "prompt": "make this star red", "region": "4,6,10,8",
                     "review": str(review.pk), "comment": str(region_comment.pk)}
    page = client.get(response["Location"]).content.decode()
    assert 'data-rect="4,6,10,8"' in page and "make this star red</textarea>" in page
    assert '<option value="inpaint" selected>' in page
    assert f'name="review" value="{review.pk}"' in page
    entry = AuditEntry.objects.filter(detail__step="revision_started").get()
    assert (entry.actor_id, entry.detail["comment"]) == (bob.pk, region_comment.pk)


def test_submitting_an_edit_makes_the_next_version_and_resolves_the_comment_by_it(
    project, review, region_comment, edit, image, bob, alice, client_for
):
    response = client_for(bob).post(_urls(project, review, region_comment)["reviews:comment_revision"],
                                    {"asset": edit.pk})
    new = ReviewRequest.objects.get(previous=review)
    assert response.status_code == 302 and response["Location"] == new.get_absolute_url()
    assert (new.version, new.asset_id, new.state, new.iterated_by_id) == (2, edit.pk, "in_review", bob.pk)
    assert list(new.reviewers.all()) == [alice]
    review.refresh_from_db()
    region_comment.refresh_from_db()
    assert review.state == "superseded"
    assert (region_comment.resolved_in_id, region_comment.resolved_by_id) == (new.pk, bob.pk)
    assert region_comment.resolved_at is not None
    steps = set(AuditEntry.objects.values_list("detail__step", flat=True))
    assert {"revision_submitted", "comment_resolved_by_version"} <= steps

    # Reviewers see the new version beside the old, and the old comment links to the new version.
    new_page = client_for(alice).get(new.get_absolute_url()).content.decode()
    assert f"/images/{image.pk}" in new_page or f"{image.pk}/" in new_page
    assert 'data-before-after="compare-' in new_page and "Compare with v1" in new_page
    old_page = client_for(alice).get(review.get_absolute_url()).content.decode()
    assert f'href="{new.get_absolute_url()}">v2</a>' in old_page


def test_only_an_edit_of_the_reviewed_image_may_be_submitted(project, review, region_comment, make_image, bob, image):
    unrelated = make_image(project=project, author=bob)
    for asset_id in (unrelated.pk, image.pk, 10**9):
        with pytest.raises(ValidationError) as exc:
            services.revision_submit(actor=membership(bob, project), review=review, comment=region_comment,
                                     asset_id=asset_id)
        assert "asset" in exc.value.message_dict
    assert ReviewRequest.objects.count() == 1


def test_a_comment_without_a_region_cannot_be_revised(project, review, alice, bob, edit):
    plain = services.comment_add(actor=membership(alice, project), review=review, text="no region")
    with pytest.raises(ValidationError) as exc:
        services.revision_start(actor=membership(bob, project), review=review, comment=plain)
    assert "comment" in exc.value.message_dict
    with pytest.raises(ValidationError):
        services.revision_submit(actor=membership(bob, project), review=review, comment=plain, asset_id=edit.pk)


def test_a_viewer_sees_the_comment_but_cannot_revise_or_submit(project, review, region_comment, edit, carol, client_for):
    client = client_for(carol)
    page = client.get(review.get_absolute_url()).content.decode()
    assert "make this star red" in page and "Revise this region" not in page
    urls = _urls(project, review, region_comment)
    assert client.post(urls["reviews:comment_revise"]).status_code == 403
    assert client.post(urls["reviews:comment_revision"], {"asset": edit.pk}).status_code == 403
    with pytest.raises(PermissionDenied):
        services.revision_submit(actor=membership(carol, project), review=review, comment=region_comment,
                                 asset_id=edit.pk)
    assert ReviewRequest.objects.count() == 1 and Comment.objects.get().resolved_at is None


def test_an_outsider_gets_404_on_revise_and_revision(project, review, region_comment, edit, mallory, client_for):
    client = client_for(mallory)
    urls = _urls(project, review, region_comment)
    assert set(urls) == {"reviews:comment_revise", "reviews:comment_revision"}
    for name, url in urls.items():
        assert client.post(url, {"asset": edit.pk}).status_code == 404, name
    assert ReviewRequest.objects.count() == 1 and Comment.objects.get().resolved_at is None


def test_the_author_sees_revise_on_a_region_comment(project, review, region_comment, bob, client_for):
    page = client_for(bob).get(review.get_absolute_url()).content.decode()
    assert "Revise this region" in page
    assert _urls(project, review, region_comment)["reviews:comment_revise"] in page


def test_the_edit_result_page_offers_to_submit_to_the_review(project, review, region_comment, edit, bob, carol,
                                                              client_for):
    from webapp.studio.models import Job

    Job.objects.filter(pk=edit.job_id).update(edit_source="edits/e.png")
    url = reverse("studio:edit_result", args=[project.pk, edit.job_id])
    action = reverse("reviews:comment_revision", args=[project.pk, review.pk, region_comment.pk])
    page = client_for(bob).get(f"{url}?review={review.pk}&comment={region_comment.pk}").content.decode()
    assert f'action="{action}"' in page and f'name="asset" value="{edit.pk}"' in page
    assert action not in client_for(bob).get(url).content.decode()
    assert action not in client_for(carol).get(f"{url}?review={review.pk}&comment={region_comment.pk}").content.decode()
    assert "Submit as the review" not in client_for(bob).get(f"{url}?review=x&comment=1").content.decode()
