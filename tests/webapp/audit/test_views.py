from __future__ import annotations

import pytest
from django.urls import reverse

from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def entries(team, other_team, project, alice, bob, mallory):
    audit_record(actor=bob, team_id=team.pk, project_id=project.pk, action=AuditAction.GENERATED,
                 object_kind="image", object_id=7)
    audit_record(actor=alice, team_id=team.pk, project_id=project.pk, action=AuditAction.VERDICT,
                 object_kind="image", object_id=7, detail={"decision": "approve"})
    audit_record(actor=mallory, team_id=other_team.pk, action=AuditAction.EXPORTED, object_kind="export", object_id=1)


@pytest.mark.parametrize("name", ["audit:team_audit", "audit:team_audit_csv"])
def test_an_outsider_gets_404_on_the_audit_trail(team, entries, mallory, client_for, name):
    assert client_for(mallory).get(reverse(name, args=[team.pk])).status_code == 404


@pytest.mark.parametrize("user", ["bob", "carol"])
def test_members_and_viewers_cannot_read_the_audit_trail(team, entries, client_for, request, user):
    client = client_for(request.getfixturevalue(user))
    assert client.get(reverse("audit:team_audit", args=[team.pk])).status_code == 403
    assert client.get(reverse("audit:team_audit_csv", args=[team.pk])).status_code == 403


def test_the_owner_reads_the_teams_trail_only(team, entries, alice, client_for):
    html = client_for(alice).get(reverse("audit:team_audit", args=[team.pk])).content.decode()
    assert "Generated" in html and "Gave a verdict" in html
    assert "mallory" not in html


def test_the_trail_filters_by_action_and_person(team, entries, alice, bob, client_for):
    client = client_for(alice)
    html = client.get(reverse("audit:team_audit", args=[team.pk]), {"action": "verdict"}).content.decode()
    assert "Gave a verdict" in html and "<td>Generated</td>" not in html
    html = client.get(reverse("audit:team_audit", args=[team.pk]), {"actor": bob.pk}).content.decode()
    assert "<td>Generated</td>" in html and "Gave a verdict</td>" not in html


def test_the_trail_exports_as_csv_with_the_same_filters(team, entries, alice, client_for):
    response = client_for(alice).get(reverse("audit:team_audit_csv", args=[team.pk]), {"action": "verdict"})
    assert response.status_code == 200 and response["Content-Type"] == "text/csv"
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0] == "at,actor,action,project_id,object_kind,object_id,detail"
    assert len(lines) == 2 and ",alice,verdict," in lines[1] and "approve" in lines[1]


def test_the_team_page_links_the_trail_for_admins_only(team, alice, bob, client_for):
    url = reverse("audit:team_audit", args=[team.pk])
    assert url in client_for(alice).get(team.get_absolute_url()).content.decode()
    assert url not in client_for(bob).get(team.get_absolute_url()).content.decode()
