"""Writes of reviews (``reviews``) and of approved-set exports (``exports``)."""
from __future__ import annotations

from webapp.reviews.services.exports import (
    approved_reviews,
    export_build,
    export_create,
    export_fail,
    export_record_download,
    exports_expire,
    manifest_entry,
)
from webapp.reviews.services.reviews import (
    Region,
    comment_add,
    comment_set_resolved,
    review_attach_next_version,
    review_iterate,
    review_request_create,
    review_state_from_verdicts,
    review_withdraw,
    revision_start,
    revision_submit,
    verdict_give,
    verdict_may_give,
)

__all__ = [
    "Region",
    "approved_reviews",
    "comment_add",
    "comment_set_resolved",
    "export_build",
    "export_create",
    "export_fail",
    "export_record_download",
    "exports_expire",
    "manifest_entry",
    "review_attach_next_version",
    "review_iterate",
    "review_request_create",
    "review_state_from_verdicts",
    "review_withdraw",
    "revision_start",
    "revision_submit",
    "verdict_give",
    "verdict_may_give",
]
