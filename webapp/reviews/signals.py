"""Reviews listens to studio's rows (studio never imports reviews): a stored image may be the
next version of a reviewed one."""
from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from webapp.studio.models import Asset


@receiver(post_save, sender=Asset, dispatch_uid="reviews_attach_next_version")
def _asset_stored(sender: Any, instance: Asset, created: bool, **kwargs: Any) -> None:
    if created and instance.job_id and not kwargs.get("raw"):  # raw: a fixture or project_import
        from webapp.reviews.services import review_attach_next_version

        review_attach_next_version(asset=instance)
