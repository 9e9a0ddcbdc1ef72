from __future__ import annotations

from django.urls import path, re_path

from webapp.api import views

app_name = "api"
urlpatterns = [
    path("projects/<int:project_id>/api/", views.keys, name="keys"),
    path("projects/<int:project_id>/api/keys/<int:key_id>/revoke/", views.key_revoke, name="key_revoke"),
    path("v1/openapi.json", views.openapi, name="openapi"),
    path("v1/models", views.models_list, name="models"),
    path("v1/models/<str:model>", views.model_detail, name="model"),
    path("v1/chat/completions", views.chat_completions, name="chat_completions"),
    path("v1/completions", views.completions, name="completions"),
    path("v1/images/generations", views.images_generations, name="images_generations"),
    path("v1/images/edits", views.images_edits, name="images_edits"),
    path("v1/images/variations", views.images_variations, name="images_variations"),
    path("v1/images/<int:asset_id>/content", views.image_file, name="image_file"),
    path("v1/files", views.files, name="files"),
    path("v1/embeddings", views.embeddings, name="embeddings"),
    re_path(r"^v1/(?P<rest>.*)$", views.v1_not_found, name="v1_not_found"),
]
