"""ATELIER_OIDC_PROVIDERS and ATELIER_OIDC_ROLE_MAP, read by settings.py (plain Python: no Django yet)."""
from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

_PROVIDER_FIELDS = ("name", "issuer", "client_id", "secret")
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def _json(name: str, raw: str, kind: type) -> Any:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(f"{name} is not valid JSON: {exc}") from None
    if not isinstance(value, kind):
        raise ImproperlyConfigured(f"{name} must be a JSON {'list' if kind is list else 'object'}.")
    return value


def oidc_providers_setting(raw: str) -> list[dict[str, Any]]:
    """allauth's APPS list from ``[{"name", "issuer", "client_id", "secret"}, ...]``. A provider's id (in
    its URLs) is its name in lower case with dashes; discovery reads ``<issuer>/.well-known/openid-configuration``."""
    if not raw.strip():
        return []
    apps = []
    for index, entry in enumerate(_json("ATELIER_OIDC_PROVIDERS", raw, list)):
        if not isinstance(entry, dict):
            raise ImproperlyConfigured(f"ATELIER_OIDC_PROVIDERS[{index}] must be an object.")
        for field in _PROVIDER_FIELDS:
            if not isinstance(entry.get(field), str) or not entry[field].strip():
                raise ImproperlyConfigured(f"ATELIER_OIDC_PROVIDERS[{index}] needs a text '{field}'.")
        issuer = urlsplit(entry["issuer"])
        # The ID token comes straight from the token endpoint, so TLS is what vouches for it (allauth then
        # skips its signature, as OIDC Core 3.1.3.7 allows): plain http only on this machine.
        if issuer.scheme != "https" and not (issuer.scheme == "http" and issuer.hostname in _LOOPBACK):
            raise ImproperlyConfigured(f"ATELIER_OIDC_PROVIDERS[{index}] 'issuer' must be an https:// URL "
                                       f"(http:// only on localhost), not {entry['issuer']!r}.")
        provider_id = re.sub(r"[^a-z0-9]+", "-", entry["name"].lower()).strip("-") or f"oidc-{index}"
        apps.append({
            "provider_id": provider_id,
            "name": entry["name"],
            "client_id": entry["client_id"],
            "secret": entry["secret"],
            "settings": {"server_url": entry["issuer"].rstrip("/")},
        })
    ids = [app["provider_id"] for app in apps]
    if len(set(ids)) != len(ids):
        raise ImproperlyConfigured("ATELIER_OIDC_PROVIDERS: two providers have the same name.")
    return apps


def oidc_role_map_setting(raw: str) -> dict[str, tuple[str, str]]:
    """``{"group": ["Team name", "role"]}`` as ``{"group": ("Team name", "role")}``."""
    if not raw.strip():
        return {}
    roles = {"viewer", "member", "admin", "owner"}
    mapping = {}
    for group, target in _json("ATELIER_OIDC_ROLE_MAP", raw, dict).items():
        if (not isinstance(target, list) or len(target) != 2 or not all(isinstance(t, str) for t in target)
                or target[1] not in roles):
            raise ImproperlyConfigured(f"ATELIER_OIDC_ROLE_MAP[{group!r}] must be [\"Team name\", role], "
                                       f"role one of {sorted(roles)}.")
        mapping[group] = (target[0], target[1])
    return mapping


def oidc_form_action_origins(apps: list[dict[str, Any]]) -> list[str]:
    """The providers' origins (``https://id.example``): their authorization endpoints are on the issuer's."""
    origins = []
    for app in apps:
        url = urlsplit(app["settings"]["server_url"])
        origin = f"{url.scheme}://{url.netloc}"
        if origin not in origins:
            origins.append(origin)
    return origins
