from __future__ import annotations

import pytest
from allauth.mfa.models import Authenticator

from tests.factories import membership_of
from webapp.api.services.keys import key_create
from webapp.chat.models import Conversation, Message, Role
from webapp.chat.params import default_model_name
from webapp.knowledge.models import Document
from webapp.prompt_templates import services as template_services
from webapp.prompts.models import PromptRecord
from webapp.reviews import services as review_services
from webapp.reviews.models import AssetKind
from webapp.studio.models import Asset, Job
from webapp.workspaces import services as workspace_services
from webapp.workspaces.models import Invite, Membership
from webapp.workspaces.models import Role as TeamRole


@pytest.fixture
def world(team, alice, bob, carol, dave, project, no_enqueue):
    """Alice's team with one of everything, and dave: a member who gets removed."""
    conversation = Conversation.objects.create(project=project, created_by=bob, title="plans")
    prompt_record = PromptRecord.objects.create(project=project, author=bob, kind="chat", text="hi")
    prompt = Message.objects.create(conversation=conversation, role=Role.USER, author=bob, text="hi",
                                    prompt=prompt_record)
    Message.objects.create(conversation=conversation, parent=prompt, role=Role.ASSISTANT, author=bob, text="hello",
                           status="done")
    job = Job.objects.create(project=project, author=bob, params={"prompt": "a cat"}, model_name="m",
                             status="done")
    asset = Asset.objects.create(project=project, job=job, author=bob, file="x.png", thumbnail="x.thumb.png",
                                 sha256="0" * 64, width=8, height=8, model_name="m", model_revision="r",
                                 scheduler="s", steps=1, params={}, guidance_scale=1.0, seed=1)
    edit = Asset.objects.create(project=project, job=job, author=bob, file="y.png", thumbnail="y.thumb.png",
                                sha256="1" * 64, width=8, height=8, model_name="m", model_revision="r",
                                scheduler="s", steps=1, params={}, guidance_scale=1.0, seed=1, parent=asset,
                                edit_mode="inpaint")
    invite = Invite.objects.create(team=team, role=TeamRole.MEMBER, created_by=alice)
    template = template_services.template_create(
        actor=membership_of(bob, team), project=project, name="Brief", command="brief", kind="chat", body="Plan {topic}"
    )
    (review,) = review_services.review_request_create(
        actor=membership_of(bob, team), project=project, kind=AssetKind.IMAGE, asset_ids=[asset.pk],
        reviewer_ids=[alice.pk],
    )
    comment = review_services.comment_add(actor=membership_of(alice, team), review=review, text="Warmer light?")
    export = review_services.export_create(actor=membership_of(alice, team), project=project)
    key = key_create(actor=membership_of(bob, team), project=project, name="ci").key
    document = Document.objects.create(project=project, title="Handbook", filename="handbook.md", kind="md",
                                       byte_size=5, sha256="0" * 64, file="knowledge/x.md", added_by=bob,
                                       status="done")
    workspace_services.membership_remove(actor=Membership.objects.get(team=team, user=alice),
                                         membership=Membership.objects.get(team=team, user=dave))
    return {
        "team_id": team.pk, "project_id": project.pk, "conversation_id": conversation.pk, "message_id": prompt.pk,
        "job_id": job.pk, "asset_id": asset.pk, "other_id": edit.pk, "prompt_id": prompt_record.pk, "invite_id": invite.pk,
        "membership_id": Membership.objects.get(team=team, user=carol).pk, "dave": dave,
        "template_id": template.pk, "number": 1, "kind": AssetKind.IMAGE, "review_id": review.pk,
        "comment_id": comment.pk, "export_id": export.pk, "key_id": key.pk, "model": default_model_name(),
        "token": invite.token, "rest": "no/such/endpoint",
        # allauth's links (e-mail confirmation, password reset): the key is its own credential.
        "key": "no-such-key", "uidb36": "0",
        # allauth.mfa's security-key pages (keys/<int:pk>/...): alice's key.
        "pk": Authenticator.objects.create(user=alice, type=Authenticator.Type.WEBAUTHN,
                                           data={"name": "alice's key", "credential": {}}).pk,
        # allauth's OIDC pages (oidc/<provider_id>/login/...): a configured identity provider, no one's object.
        "provider_id": "acme-sso",
        "document_id": document.pk,
    }
