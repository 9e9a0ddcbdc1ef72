from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("webapp.accounts.urls")),
    path("", include("webapp.core.urls")),
    path("", include("webapp.workspaces.urls")),
    path("", include("webapp.prompts.urls")),
    path("", include("webapp.prompt_templates.urls")),
    path("", include("webapp.chat.urls")),
    path("", include("webapp.studio.urls")),
]
