from __future__ import annotations

from django.urls import path

from webapp.reviews import views

app_name = "reviews"
review = "projects/<int:project_id>/reviews/<int:review_id>/"
export = "projects/<int:project_id>/reviews/exports/<int:export_id>/"
urlpatterns = [
    path("reviews/", views.inbox, name="inbox"),
    path("projects/<int:project_id>/reviews/", views.project_reviews, name="project"),
    path("projects/<int:project_id>/reviews/asset/<str:kind>/<int:asset_id>/", views.asset_panel, name="asset_panel"),
    path("projects/<int:project_id>/reviews/ask/<str:kind>/<int:asset_id>/", views.review_ask, name="ask"),
    path("projects/<int:project_id>/reviews/ask-images/", views.review_ask_images, name="ask_images"),
    path(review, views.review_detail, name="detail"),
    path(f"{review}verdict/", views.review_verdict, name="verdict"),
    path(f"{review}comments/", views.review_comment, name="comment"),
    path(f"{review}comments/<int:comment_id>/resolve/", views.comment_resolve, name="comment_resolve"),
    path(f"{review}comments/<int:comment_id>/revise/", views.comment_revise, name="comment_revise"),
    path(f"{review}comments/<int:comment_id>/revision/", views.comment_revision, name="comment_revision"),
    path(f"{review}withdraw/", views.review_withdraw, name="withdraw"),
    path(f"{review}iterate/", views.review_iterate, name="iterate"),
    path("projects/<int:project_id>/reviews/exports/", views.export_create, name="export_create"),
    path(export, views.export_status, name="export_status"),
    path(f"{export}download/", views.export_download, name="export_download"),
]
