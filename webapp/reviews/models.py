"""Review requests, verdicts, comments and exports of approved sets.

Any kind of asset can be reviewed: a request points at one by ``asset_kind``
and ``asset_id`` (see ``kinds.py``), images (studio.Asset) and chat replies
(chat.Message) first. A request lives until it is withdrawn or superseded by
the request on the asset's next version; its verdicts and comments stay with it.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from webapp.core.models import JobModel


class AssetKind(models.TextChoices):
    IMAGE = "image", "Image"
    REPLY = "reply", "Chat reply"


class ReviewState(models.TextChoices):
    IN_REVIEW = "in_review", "In review"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"
    SUPERSEDED = "superseded", "Superseded"


# States in which the request still takes verdicts and comments.
OPEN_STATES = (ReviewState.IN_REVIEW, ReviewState.CHANGES_REQUESTED, ReviewState.APPROVED, ReviewState.REJECTED)
# States in which somebody still has to act.
PENDING_STATES = (ReviewState.IN_REVIEW, ReviewState.CHANGES_REQUESTED)


class Decision(models.TextChoices):
    APPROVE = "approve", "Approve"
    REQUEST_CHANGES = "request_changes", "Request changes"
    REJECT = "reject", "Reject"


class ReviewRound(models.Model):
    """The assets one person sent for review together (one asset, or a selection from the gallery)."""

    project = models.ForeignKey("workspaces.Project", on_delete=models.CASCADE, related_name="review_rounds")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"round {self.pk}"


class ReviewRequest(models.Model):
    project = models.ForeignKey("workspaces.Project", on_delete=models.CASCADE, related_name="review_requests")
    round = models.ForeignKey(ReviewRound, on_delete=models.CASCADE, related_name="requests")
    asset_kind = models.CharField(max_length=10, choices=AssetKind.choices)
    asset_id = models.BigIntegerField()
    # Who made the asset: they cannot approve it. A next version keeps the first version's author.
    asset_author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    # Who made this version from "changes requested" (``review_iterate``); they cannot approve it either.
    iterated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    reviewers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="review_requests_to_me")
    anyone = models.BooleanField(default=False, help_text="Anyone in the project who may give verdicts.")
    state = models.CharField(max_length=20, choices=ReviewState.choices, default=ReviewState.IN_REVIEW, db_index=True)
    version = models.PositiveIntegerField(default=1)
    previous = models.OneToOneField(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="superseded_by"
    )
    # The studio job asked for from "changes requested"; its first image becomes the next version.
    next_job = models.ForeignKey("studio.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    note = models.TextField(blank=True, max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)
    state_changed_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-state_changed_at", "-id"]
        indexes = [models.Index(fields=["asset_kind", "asset_id"], name="reviews_request_asset")]

    def __str__(self) -> str:
        return f"review {self.pk} of {self.asset_kind} {self.asset_id} ({self.state})"

    def get_absolute_url(self) -> str:
        return reverse("reviews:detail", kwargs={"project_id": self.project_id, "review_id": self.pk})

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


class Verdict(models.Model):
    """One verdict of one reviewer. A new one replaces the reviewer's current one; all are kept."""

    review = models.ForeignKey(ReviewRequest, on_delete=models.CASCADE, related_name="verdicts")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    decision = models.CharField(max_length=20, choices=Decision.choices)
    comment = models.TextField(blank=True, max_length=5000)
    is_current = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set on rows that came from a project archive: reviewer and time are the archive's, not this site's.
    imported_from = models.ForeignKey("workspaces.ProjectImport", on_delete=models.SET_NULL, null=True, blank=True,
                                      related_name="+")

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["review", "reviewer"], condition=models.Q(is_current=True), name="reviews_one_current_verdict"
            )
        ]

    def __str__(self) -> str:
        return f"{self.decision} on review {self.review_id}"


class Comment(models.Model):
    review = models.ForeignKey(ReviewRequest, on_delete=models.CASCADE, related_name="comments")
    parent = models.ForeignKey("self", on_delete=models.CASCADE, null=True, blank=True, related_name="replies")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    text = models.TextField(max_length=5000)
    # A region of the image, in image pixels; all four set or none.
    region_x = models.PositiveIntegerField(null=True, blank=True)
    region_y = models.PositiveIntegerField(null=True, blank=True)
    region_w = models.PositiveIntegerField(null=True, blank=True)
    region_h = models.PositiveIntegerField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # "Revise this region": the review version whose image resolved this comment (issue 19).
    resolved_in = models.ForeignKey(
        "reviews.ReviewRequest", on_delete=models.SET_NULL, null=True, blank=True, related_name="resolved_comments"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Set on rows that came from a project archive: author and time are the archive's, not this site's.
    imported_from = models.ForeignKey("workspaces.ProjectImport", on_delete=models.SET_NULL, null=True, blank=True,
                                      related_name="+")

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"comment {self.pk} on review {self.review_id}"

    @property
    def has_region(self) -> bool:
        return self.region_w is not None


class ApprovedExport(JobModel):
    """A zip of approved images with their lineage, built by a worker (queue ``default``): a job of
    the one lifecycle (``webapp.core.jobs``)."""

    project = models.ForeignKey("workspaces.Project", on_delete=models.CASCADE, related_name="approved_exports")
    round = models.ForeignKey(ReviewRound, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    files_done = models.PositiveIntegerField(default=0)
    files_total = models.PositiveIntegerField(default=0)
    file = models.CharField(max_length=255, blank=True)
    byte_size = models.PositiveBigIntegerField(default=0)
    # Set when the zip was deleted after ``EXPORT_TTL_DAYS`` (``file`` is then empty).
    expired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"export {self.pk} ({self.status})"

    @property
    def progress_percent(self) -> int:
        return int(100 * self.files_done / self.files_total) if self.files_total else 0

    @property
    def download_name(self) -> str:
        scope = f"round{self.round_id}" if self.round_id else "project"
        return f"atelier-{self.project_id}-approved-{scope}-{self.pk}.zip"
