from __future__ import annotations

from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "webapp.reviews"
    label = "reviews"

    def ready(self) -> None:
        # reviews sits above studio: it listens to studio's rows, studio never imports reviews.
        from webapp.reviews import signals  # noqa: F401
