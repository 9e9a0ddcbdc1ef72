"""The IDOR matrix, built from the URLconf: every URL that names an object, as an outsider,
as a removed member and (for writes) as a viewer, is refused. A new app's URLs join by
themselves; a new kind of id needs one object in the ``world`` fixture (tests/security/conftest.py):
until it has one, the URL's tests fail, naming it and the id. Every websocket route is walked too."""
from __future__ import annotations

import re

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse

from tests.helpers import session_client, socket_for, url_patterns
from webapp.api.models import ApiKey
from webapp.chat.models import Conversation, Message
from webapp.knowledge.models import Document
from webapp.prompt_templates.models import PromptTemplate, TemplateVersion
from webapp.reviews.models import ApprovedExport, Comment, ReviewRequest, Verdict
from webapp.studio.models import Job
from webapp.usage.models import Budget, TeamUsageSettings
from webapp.workspaces.models import Invite, Membership

pytestmark = pytest.mark.django_db

# 401: the /v1 API takes bearer keys only, so a session (anyone's) is refused as unauthenticated.
REFUSED = {401, 403, 404, 405}
# Views that take no object id from the path, or whose id is its own credential.
NOT_OBJECT_URLS = {"workspaces:invite_accept",
                   # allauth's e-mail links: the key is the credential (tests/security/test_account_links.py)
                   "account_confirm_email", "account_reset_password_from_key",
                   # behind allauth's reauthentication, which a forced login lacks: test_account_links.py
                   # reauthenticates an outsider and then finds no one else's key
                   "mfa_remove_webauthn", "mfa_edit_webauthn",
                   # provider_id names a configured identity provider, no one's object:
                   # tests/webapp/accounts/test_oidc.py has their outsider tests
                   "openid_connect_login", "openid_connect_callback"}
# Writes a viewer may do, and why.
VIEWER_MAY_POST = {
    "workspaces:member_remove": "anyone may leave a team (the matrix posts their own membership)",
    "reviews:comment": "viewers may comment on a review (issue #12)",
    "reviews:export_create": "viewers may export the approved images they can already download",
    "api:keys": "viewers may make a key of their own (it can only list models)",
}


def _object_urls() -> list[tuple[str, list[str]]]:
    return [
        (name, list(converters))
        for name, _, converters in url_patterns()
        if converters and not name.startswith("admin:") and name not in NOT_OBJECT_URLS
    ]


def _url(name: str, kwargs: list[str], world: dict) -> str:
    missing = [k for k in kwargs if k not in world]
    if missing:  # a new kind of id: the URL must not pass untested
        pytest.fail(f"{name}: the world fixture (tests/security/conftest.py) has no object for {missing}")
    return reverse(name, kwargs={k: world[k] for k in kwargs})


def test_a_url_whose_id_the_world_lacks_fails_naming_the_url_and_the_id():
    with pytest.raises(pytest.fail.Exception, match=r"chat:conversation: .* no object for \['conversation_id'\]"):
        _url("chat:conversation", ["project_id", "conversation_id"], {"project_id": 1})


def _snapshot() -> tuple:
    """What a write could change: rows of every kind, and the states a write flips."""
    counted = (Message, Conversation, Job, Invite, Membership, PromptTemplate, TemplateVersion, ReviewRequest,
               Verdict, Comment, ApprovedExport, ApiKey, Document)
    counted += (Budget, TeamUsageSettings)  # usage (issue 21)
    return (
        tuple(model.objects.count() for model in counted),
        list(PromptTemplate.objects.values_list("pk", "name", "published_version_id", "shared_with_team")),
        list(ReviewRequest.objects.values_list("pk", "state")),
        list(Comment.objects.values_list("pk", "resolved_at")),
        list(ApiKey.objects.values_list("pk", "revoked_at")),
        list(Document.objects.values_list("pk", "status")),
    )


@pytest.mark.parametrize(("name", "kwargs"), _object_urls())
def test_an_outsider_is_refused_everywhere(name, kwargs, world, mallory, client_for):
    client = client_for(mallory)
    url = _url(name, kwargs, world)
    assert client.get(url).status_code in REFUSED, f"GET {name}"
    assert client.post(url, {"text": "x", "name": "x", "role": "owner", "title": "x"}).status_code in REFUSED, f"POST {name}"


@pytest.mark.parametrize(("name", "kwargs"), _object_urls())
def test_a_removed_member_is_refused_everywhere(name, kwargs, world, client_for):
    client = client_for(world["dave"])
    url = _url(name, kwargs, world)
    assert client.get(url).status_code in REFUSED, f"GET {name}"
    assert client.post(url, {"text": "x", "name": "x", "role": "owner", "title": "x"}).status_code in REFUSED, f"POST {name}"


@pytest.mark.parametrize(("name", "kwargs"), _object_urls())
def test_a_viewer_cannot_write_anywhere(name, kwargs, world, carol, client_for):
    if name in VIEWER_MAY_POST:
        pytest.skip(VIEWER_MAY_POST[name])
    client = client_for(carol)
    url = _url(name, kwargs, world)
    before = _snapshot()
    response = client.post(url, {"text": "x", "name": "x", "role": "owner", "title": "x", "prompt": "a dog",
                                 "body": "x", "decision": "approved", "command": "x"})
    after = _snapshot()
    # Some views answer a refused write with the page and an error (200) or a redirect: what
    # counts is that nothing was written.
    assert response.status_code < 500, f"POST {name} as a viewer: {response.status_code}"
    assert before == after, f"POST {name} as a viewer wrote something"


def _socket_routes() -> list[str]:
    from webapp.routing import websocket_urlpatterns

    return [str(route.pattern) for route in websocket_urlpatterns]


def _socket_path(route: str, world: dict) -> str:
    names = re.findall(r"<(?:\w+:)?(\w+)>", route)
    missing = [n for n in names if n not in world]
    if missing:
        pytest.fail(f"socket {route}: the world fixture (tests/security/conftest.py) has no object for {missing}")
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(world[m.group(1)]), route)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis_server")
@pytest.mark.parametrize("route", _socket_routes())
async def test_every_socket_opens_for_a_member_only(route, world, bob, mallory):
    path = _socket_path(route, world)
    for user, opens in ((bob, True), (mallory, False), (world["dave"], False)):
        socket = socket_for(path, await sync_to_async(session_client)(user))
        connected, code = await socket.connect(timeout=5)
        assert connected == opens, f"{path} as {user.username}: {'opened' if connected else code}"
        await socket.disconnect()
