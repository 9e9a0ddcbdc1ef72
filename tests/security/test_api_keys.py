"""API keys: the new secret never rests in the session store (finding 7), keys die with the
membership that made them (finding 6), and one member cannot mint keys without end (finding 2)."""
from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session
from django.urls import reverse

from webapp.api.models import ApiKey, secret_hash

pytestmark = [pytest.mark.django_db]


def _keys_url(project) -> str:
    return reverse("api:keys", kwargs={"project_id": project.pk})


def test_the_new_secret_is_shown_by_the_post_that_made_it_and_never_stored_in_the_session(client_for, project, bob):
    client = client_for(bob)
    response = client.post(_keys_url(project), {"name": "notebook"})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    key = ApiKey.objects.get(project=project, user=bob)
    secret = response.context["new_secret"]["secret"]
    assert secret_hash(secret) == key.secret_hash and secret.encode() in response.content
    # The attack: read the session store (a database dump, a cache, a backup) before the page renders again.
    for session in Session.objects.all():
        assert secret not in str(session.get_decoded())
    assert secret.encode() not in client.get(_keys_url(project)).content


# --- Finding 6: keys outlive membership changes, streams never re-check ------------------------


def _works(secret: str) -> int:
    from tests.helpers import ApiClient

    return ApiClient(secret).get("/v1/models").status_code


def test_removing_a_member_revokes_their_keys_and_rejoining_does_not_revive_them(project, team, alice, bob,
                                                                                redis_server):
    from tests.factories import membership_of
    from tests.helpers import make_key
    from webapp.workspaces import services as workspaces
    from webapp.workspaces.models import Role

    new = make_key(bob, project)
    assert _works(new.secret) == 200
    workspaces.membership_remove(actor=membership_of(alice, team), membership=membership_of(bob, team))
    assert ApiKey.objects.get(pk=new.key.pk).revoked_at is not None
    invite = workspaces.invite_create(actor=membership_of(alice, team), role=Role.MEMBER)
    workspaces.invite_accept(invite=invite, user=bob)
    assert _works(new.secret) == 401


def test_leaving_the_team_revokes_ones_keys(project, team, bob, redis_server):
    from tests.factories import membership_of
    from tests.helpers import make_key
    from webapp.workspaces import services as workspaces

    new = make_key(bob, project)
    workspaces.membership_remove(actor=membership_of(bob, team), membership=membership_of(bob, team))
    assert ApiKey.objects.get(pk=new.key.pk).revoked_at is not None
    assert _works(new.secret) == 401


def test_dropping_to_viewer_revokes_the_keys_for_good(project, team, alice, bob, redis_server):
    from tests.factories import membership_of
    from tests.helpers import make_key
    from webapp.workspaces import services as workspaces
    from webapp.workspaces.models import Role

    new = make_key(bob, project)
    workspaces.membership_change_role(actor=membership_of(alice, team), membership=membership_of(bob, team),
                                      role=Role.VIEWER)
    workspaces.membership_change_role(actor=membership_of(alice, team), membership=membership_of(bob, team),
                                      role=Role.MEMBER)
    assert _works(new.secret) == 401


def test_a_role_change_that_still_generates_keeps_the_keys(project, team, alice, bob, carol, redis_server):
    from tests.factories import membership_of
    from tests.helpers import make_key
    from webapp.workspaces import services as workspaces
    from webapp.workspaces.models import Role

    bobs, carols = make_key(bob, project), make_key(carol, project)
    workspaces.membership_change_role(actor=membership_of(alice, team), membership=membership_of(bob, team),
                                      role=Role.ADMIN)
    workspaces.membership_change_role(actor=membership_of(alice, team), membership=membership_of(carol, team),
                                      role=Role.MEMBER)  # a viewer's key was never a generating one: it stays
    assert _works(bobs.secret) == _works(carols.secret) == 200
