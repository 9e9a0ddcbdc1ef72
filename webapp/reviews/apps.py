from __future__ import annotations

from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "webapp.reviews"
    label = "reviews"

    def ready(self) -> None:
        # reviews sits above studio: it listens to studio's rows, studio never imports reviews.
        from webapp.core.jobs import job_kind_register
        from webapp.reviews import signals  # noqa: F401
        from webapp.reviews.services.exports import EXPORT_JOB

        job_kind_register(EXPORT_JOB)
