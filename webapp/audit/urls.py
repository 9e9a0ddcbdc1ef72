from __future__ import annotations

from django.urls import path

from webapp.audit import views

app_name = "audit"
urlpatterns = [
    path("teams/<int:team_id>/audit/", views.team_audit, name="team_audit"),
    path("teams/<int:team_id>/audit.csv", views.team_audit_csv, name="team_audit_csv"),
]
