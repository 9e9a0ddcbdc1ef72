"""A new team's first minutes, in a real browser against the real ASGI server."""
from __future__ import annotations

import re

import pytest

from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _sign_up(page, base_url: str, username: str) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password confirmation").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()


def test_signup_team_project_invite_and_the_invitee_sees_the_project(asgi_server, new_page):
    alice = new_page()
    alice.goto(f"{asgi_server}/accounts/signup/")
    _sign_up(alice, asgi_server, "alice")
    alice.get_by_role("link", name="Create your first team").click()
    alice.get_by_label("Name").fill("Acme")
    alice.get_by_role("button", name="Create team").click()
    alice.get_by_role("link", name="New project").first.click()
    alice.get_by_label("Name").fill("Launch")
    alice.get_by_role("button", name="Create project").click()
    assert alice.get_by_role("heading", name="Launch").is_visible()

    alice.get_by_role("link", name="Acme").first.click()
    alice.get_by_role("button", name="Create invite link").click()
    link = alice.get_by_label("Invite link").first.input_value()
    assert re.search(r"/invite/[\w-]+/$", link)

    bob = new_page()
    bob.goto(link)
    bob.get_by_role("link", name="Create an account").click()
    _sign_up(bob, asgi_server, "bob")
    bob.get_by_role("button", name="Join team").click()
    bob.get_by_role("link", name="Launch").first.click()
    assert bob.get_by_role("heading", name="Launch").is_visible()
    assert "you are member" in bob.content()
