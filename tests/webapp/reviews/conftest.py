from __future__ import annotations

from tests.webapp.reviews.helpers import dave, image, make_image

__all__ = ["dave", "image", "make_image"]
