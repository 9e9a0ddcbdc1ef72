from __future__ import annotations

from django.urls import path

from webapp.workspaces import views

app_name = "workspaces"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("teams/new/", views.team_create, name="team_create"),
    path("teams/<int:team_id>/", views.team_detail, name="team_detail"),
    path("teams/<int:team_id>/invites/", views.invite_create, name="invite_create"),
    path("teams/<int:team_id>/invites/<int:invite_id>/revoke/", views.invite_revoke, name="invite_revoke"),
    path("teams/<int:team_id>/members/<int:membership_id>/role/", views.member_role, name="member_role"),
    path("teams/<int:team_id>/members/<int:membership_id>/remove/", views.member_remove, name="member_remove"),
    path("teams/<int:team_id>/projects/new/", views.project_create, name="project_create"),
    path("invite/<str:token>/", views.invite_accept, name="invite_accept"),
    path("projects/<int:project_id>/", views.project_detail, name="project_detail"),
    path("projects/<int:project_id>/settings/", views.project_settings, name="project_settings"),
    path("projects/<int:project_id>/delete/", views.project_delete, name="project_delete"),
    path("teams/<int:team_id>/two-factor/", views.team_two_factor, name="team_two_factor"),
]
