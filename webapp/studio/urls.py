from __future__ import annotations

from django.urls import path

from webapp.studio import views

app_name = "studio"
urlpatterns = [
    path("projects/<int:project_id>/studio/", views.index, name="index"),
    path("projects/<int:project_id>/studio/queue/", views.queue_panel, name="queue"),
    path("projects/<int:project_id>/studio/jobs/<int:job_id>/", views.job_card, name="job_card"),
    path("projects/<int:project_id>/studio/jobs/<int:job_id>/cancel/", views.job_cancel, name="job_cancel"),
    path("projects/<int:project_id>/gallery/", views.gallery, name="gallery"),
    path("projects/<int:project_id>/gallery/<int:asset_id>/", views.asset_detail, name="asset_detail"),
    path("projects/<int:project_id>/gallery/<int:asset_id>/image.png", views.asset_image, name="asset_image"),
    path("projects/<int:project_id>/gallery/<int:asset_id>/thumb.png", views.asset_thumbnail, name="asset_thumbnail"),
    path("projects/<int:project_id>/gallery/<int:asset_id>/download/", views.asset_download, name="asset_download"),
    path("projects/<int:project_id>/gallery/<int:asset_id>/diff/<int:other_id>/", views.asset_diff, name="asset_diff"),
    path("projects/<int:project_id>/gallery/<int:asset_id>/rerun/", views.asset_rerun, name="asset_rerun"),
    path(
        "projects/<int:project_id>/gallery/<int:asset_id>/vary/", views.asset_rerun, {"vary": True}, name="asset_vary"
    ),
    # Edits (issue 19)
    path("projects/<int:project_id>/studio/edit/", views.edit, name="edit"),
    path("projects/<int:project_id>/studio/edits/<int:job_id>/", views.edit_result, name="edit_result"),
    path("projects/<int:project_id>/studio/edits/<int:job_id>/source.png", views.edit_file, {"which": "source"},
         name="edit_source"),
    path("projects/<int:project_id>/studio/edits/<int:job_id>/mask.png", views.edit_file, {"which": "mask"},
         name="edit_mask"),
]
