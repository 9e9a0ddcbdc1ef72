from __future__ import annotations

from django.urls import path

from webapp.usage import views

app_name = "usage"
urlpatterns = [
    path("teams/<int:team_id>/usage/", views.team_usage, name="team_usage"),
    path("teams/<int:team_id>/usage.csv", views.team_usage_csv, name="team_usage_csv"),
    path("teams/<int:team_id>/usage/budgets/", views.team_budgets, name="team_budgets"),
]
