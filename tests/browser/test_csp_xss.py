"""In real Chromium: pages load under the CSP with no violation (htmx, its ws extension,
our static JS), and XSS payloads in names and messages stay inert (a ``window.__xss`` probe
never fires)."""
from __future__ import annotations

import time

import pytest

from tests.factories import PASSWORD, MembershipFactory, ProjectFactory, TeamFactory, UserFactory
from webapp.chat.models import Conversation, Message, Role
from webapp.workspaces.models import Role as TeamRole

pytestmark = [pytest.mark.browser, pytest.mark.stack, pytest.mark.django_db(transaction=True)]

PAYLOADS = [
    '<script>window.__xss=1</script>',
    '<img src=x onerror="window.__xss=2">',
    '"><svg onload="window.__xss=3">',
    "<a href=\"javascript:window.__xss=4\">x</a>",
    "<div hx-get=\"/\" hx-trigger=\"load\" hx-on::after-request=\"window.__xss=5\">",
]


def _log_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base_url}/")


def _watch(page) -> list[str]:
    """Collects CSP violations (console and DOM events) and page errors."""
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => "
        "{ (window.__csp = window.__csp || []).push(e.violatedDirective + ' ' + e.blockedURI) });"
    )
    return problems


@pytest.fixture
def hostile_world():
    payload = " ".join(PAYLOADS)
    user = UserFactory(username="victim")
    team = TeamFactory(name=("T " + payload)[:100])
    MembershipFactory(team=team, user=user, role=TeamRole.OWNER)
    project = ProjectFactory(team=team, name=("P " + payload)[:100], description=payload, created_by=user)
    conversation = Conversation.objects.create(project=project, created_by=user, title=("C " + payload)[:200])
    prompt = Message.objects.create(conversation=conversation, role=Role.USER, author=user, text=payload)
    Message.objects.create(conversation=conversation, parent=prompt, role=Role.ASSISTANT, author=user,
                           text="Reply " + payload + "\n\n```html\n" + payload + "\n```")
    return user, team, project, conversation


def test_pages_load_under_the_csp_and_payloads_stay_inert(asgi_server, new_page, hostile_world):
    user, team, project, conversation = hostile_world
    page = new_page()
    problems = _watch(page)
    _log_in(page, asgi_server, user.username)
    for path in ["/", f"/teams/{team.pk}/", f"/projects/{project.pk}/", f"/projects/{project.pk}/settings/",
                 f"/projects/{project.pk}/chat/", conversation.get_absolute_url(), f"/projects/{project.pk}/studio/",
                 f"/projects/{project.pk}/gallery/", f"/projects/{project.pk}/history/"]:
        response = page.goto(asgi_server + path)
        assert response is not None and response.status == 200, path
        assert "script-src 'self'" in response.headers.get("content-security-policy", ""), path
        page.wait_for_load_state("networkidle")
        time.sleep(0.3)
        assert page.evaluate("window.__xss") is None, path
        assert page.evaluate("window.__csp || []") == [], path
    assert not problems, problems


def test_the_studio_socket_connects_under_the_csp(asgi_server, new_page, hostile_world):
    """The ws extension opens its socket from our own origin; 'self' in connect-src allows it."""
    user, _team, project, _conversation = hostile_world
    page = new_page()
    problems = _watch(page)
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    _log_in(page, asgi_server, user.username)
    page.goto(f"{asgi_server}/projects/{project.pk}/studio/")
    page.wait_for_load_state("networkidle")
    deadline = time.monotonic() + 10
    while not sockets and time.monotonic() < deadline:
        time.sleep(0.1)
    assert any(f"/ws/projects/{project.pk}/studio/" in url for url in sockets)
    assert page.evaluate("window.__csp || []") == []
    assert not problems, problems
