from __future__ import annotations

from django.urls import path

from webapp.activity import views

app_name = "activity"
urlpatterns = [
    path("projects/<int:project_id>/activity/", views.project_activity, name="project"),
]
