from __future__ import annotations

from django.urls import path

from webapp.knowledge import views

app_name = "knowledge"
document = "projects/<int:project_id>/knowledge/<int:document_id>/"
urlpatterns = [
    path("projects/<int:project_id>/knowledge/", views.index, name="index"),
    path("projects/<int:project_id>/knowledge/add/", views.document_add, name="add"),
    path(document, views.document_status, name="document"),
    path(f"{document}replace/", views.document_replace, name="replace"),
    path(f"{document}delete/", views.document_delete, name="delete"),
    path(f"{document}stop/", views.document_stop, name="stop"),
]
