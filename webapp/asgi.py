"""HTTP and websockets in one ASGI application (served by daphne)."""
from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from webapp.core.origins import SettingsOriginValidator  # noqa: E402
from webapp.core.proxy import ProxyHeadersMiddleware, refuse_daphne_proxy_flag  # noqa: E402
from webapp.routing import websocket_urlpatterns  # noqa: E402

refuse_daphne_proxy_flag()
# Outermost: the client address (REMOTE_ADDR, the lockout's key) is settled before anything reads it.
application = ProxyHeadersMiddleware(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": SettingsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
        }
    )
)
