from __future__ import annotations

from django.contrib import admin

from webapp.reviews.models import ApprovedExport, Comment, ReviewRequest, Verdict


@admin.register(ReviewRequest)
class ReviewRequestAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "asset_kind", "asset_id", "version", "state", "requested_by", "state_changed_at")
    list_filter = ("state", "asset_kind")


admin.site.register(Verdict)
admin.site.register(Comment)
admin.site.register(ApprovedExport)
