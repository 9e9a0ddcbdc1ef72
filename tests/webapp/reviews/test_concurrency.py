"""Two reviewers deciding at the same moment: both verdicts count."""
from __future__ import annotations

import threading

import pytest
from django.db import connection

from tests.helpers import membership
from webapp.reviews import services
from webapp.reviews.models import AssetKind, ReviewRequest, Verdict

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_reviewers_approving_at_once_both_count(project, image, alice, bob, dave):
    (review,) = services.review_request_create(
        actor=membership(bob, project), project=project, kind=AssetKind.IMAGE, asset_ids=[image.pk],
        reviewer_ids=[alice.pk, dave.pk],
    )
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def approve(user) -> None:
        try:
            actor = membership(user, project)
            stale = ReviewRequest.objects.select_related("project").get(pk=review.pk)  # both read "in review"
            barrier.wait(timeout=10)
            services.verdict_give(actor=actor, review=stale, decision="approve")
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(user,)) for user in (alice, dave)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert Verdict.objects.filter(review=review, is_current=True).count() == 2
    assert ReviewRequest.objects.get(pk=review.pk).state == "approved"
