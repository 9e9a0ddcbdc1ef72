from __future__ import annotations

from django.urls import path

from webapp.prompt_templates import views

app_name = "prompt_templates"
base = "projects/<int:project_id>/templates/"
one = f"{base}<int:template_id>/"
urlpatterns = [
    path(base, views.template_list, name="list"),
    path(f"{base}new/", views.template_create, name="create"),
    path(f"{base}menu/", views.template_menu, name="menu"),
    path(f"{base}export/", views.templates_export, name="export"),
    path(f"{base}import/", views.templates_import, name="import"),
    path(one, views.template_detail, name="detail"),
    path(f"{one}edit/", views.template_edit, name="edit"),
    path(f"{one}delete/", views.template_delete, name="delete"),
    path(f"{one}diff/", views.template_diff, name="diff"),
    path(f"{one}use/", views.template_use_form, name="use"),
    path(f"{one}render/", views.template_render, name="render"),
    path(f"{one}versions/<int:number>/", views.version_detail, name="version"),
    path(f"{one}versions/<int:number>/publish/", views.version_publish, name="publish"),
]
