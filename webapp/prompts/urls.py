from __future__ import annotations

from django.urls import path

from webapp.prompts import views

app_name = "prompts"
urlpatterns = [
    path("projects/<int:project_id>/history/", views.history, name="history"),
    path("projects/<int:project_id>/history/<int:prompt_id>/reuse/", views.reuse, name="reuse"),
]
