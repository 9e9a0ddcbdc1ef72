"""The audit trail is append-only: the model, its querysets and every service refuse to change it."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.helpers import finish_job, membership
from webapp.audit.models import AuditAction, AuditEntry, AuditImmutableError
from webapp.audit.services import audit_record
from webapp.reviews import services
from webapp.reviews.models import AssetKind
from webapp.reviews.services import Region

pytestmark = pytest.mark.django_db


@pytest.fixture
def entry(team, alice):
    return audit_record(actor=alice, team_id=team.pk, action=AuditAction.EXPORTED, object_kind="export", object_id=1)


def test_audit_record_keeps_who_did_what_and_when(entry, alice, team):
    stored = AuditEntry.objects.get()
    assert (stored.actor_id, stored.actor_name, stored.team_id, stored.action) == (alice.pk, "alice", team.pk, "exported")
    assert stored.at is not None


def test_an_entry_cannot_be_saved_again(entry):
    entry.action = AuditAction.DOWNLOADED
    with pytest.raises(AuditImmutableError):
        entry.save()
    assert AuditEntry.objects.get().action == "exported"


def test_an_entry_cannot_be_deleted(entry):
    with pytest.raises(AuditImmutableError):
        entry.delete()
    with pytest.raises(AuditImmutableError):
        AuditEntry.objects.filter(pk=entry.pk).delete()
    with pytest.raises(AuditImmutableError):
        AuditEntry.objects.all().delete()
    assert AuditEntry.objects.count() == 1


def test_entries_cannot_be_updated_in_bulk(entry):
    with pytest.raises(AuditImmutableError):
        AuditEntry.objects.update(action="verdict")
    with pytest.raises(AuditImmutableError):
        AuditEntry.objects.filter(pk=entry.pk).update(actor_name="someone else")
    with pytest.raises(AuditImmutableError):
        AuditEntry.objects.bulk_update([entry], ["action"])
    assert AuditEntry.objects.get().actor_name == "alice"


def test_entries_outlive_the_user_and_the_team(entry, alice, team):
    team.delete()
    alice.delete()
    assert AuditEntry.objects.get().actor_name == "alice"


def test_the_services_only_ever_insert_audit_entries(project, make_image, no_enqueue, alice, bob, carol, dave,
                                                     redis_server):
    """The whole review workflow, with every SQL statement captured: audit rows are only inserted."""
    with CaptureQueriesContext(connection) as queries:
        image = make_image(project=project, author=bob)
        (review,) = services.review_request_create(
            actor=membership(bob, project), project=project, kind=AssetKind.IMAGE, asset_ids=[image.pk],
            reviewer_ids=[alice.pk, dave.pk],
        )
        services.comment_add(actor=membership(carol, project), review=review, text="hm", region=Region(0, 0, 4, 4))
        services.verdict_give(actor=membership(alice, project), review=review, decision="request_changes",
                              comment="again")
        services.verdict_give(actor=membership(dave, project), review=review, decision="approve")
        review.refresh_from_db()
        job = services.review_iterate(actor=membership(bob, project), review=review, vary=True)
        v2 = finish_job(job)
        new = type(review).objects.get(asset_id=v2.pk)
        services.verdict_give(actor=membership(alice, project), review=new, decision="approve")
        services.verdict_give(actor=membership(dave, project), review=new, decision="approve")
        export = services.export_create(actor=membership(carol, project), project=project)
        services.export_build(export_id=export.pk)
        services.export_record_download(actor=carol, export=export)
        withdrawn = services.review_request_create(
            actor=membership(bob, project), project=project, kind=AssetKind.IMAGE,
            asset_ids=[make_image(project=project, author=bob).pk], reviewer_ids=[], anyone=True,
        )[0]
        services.review_withdraw(actor=membership(bob, project), review=withdrawn)
    touching = [q["sql"] for q in queries.captured_queries if "audit_auditentry" in q["sql"]]
    assert touching, "the workflow should have written audit entries"
    changed = [sql for sql in touching if sql.lstrip().upper().startswith(("UPDATE", "DELETE"))]
    assert changed == []
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert actions >= {"generated", "review_requested", "commented", "verdict", "exported", "downloaded",
                       "review_withdrawn"}
