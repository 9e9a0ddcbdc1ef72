from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("webapp.accounts.urls")),
    path("accounts/", include("allauth.urls")),
    path("", include("webapp.core.urls")),
    path("", include("webapp.workspaces.urls")),
    path("", include("webapp.prompts.urls")),
    path("", include("webapp.prompt_templates.urls")),
    path("", include("webapp.chat.urls")),
    path("", include("webapp.studio.urls")),
    path("", include("webapp.audit.urls")),
    path("", include("webapp.reviews.urls")),
    path("", include("webapp.api.urls")),
    path("", include("webapp.usage.urls")),  # issue 21
    path("", include("webapp.activity.urls")),  # issue 21: the project activity page
    path("", include("webapp.knowledge.urls")),
]

# Under /v1/ even a request Django refuses before routing gets an OpenAI-shaped error.
handler400 = "webapp.api.views.bad_request"
