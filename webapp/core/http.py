from __future__ import annotations

from typing import TypeAlias

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

# Who a request or a socket belongs to: selectors take this and answer 404 to anyone but members.
AnyUser: TypeAlias = "AbstractBaseUser | AnonymousUser"


class HtmxHttpRequest(HttpRequest):
    """The request type of views that render a page or, for htmx, a partial."""

    htmx: HtmxDetails
