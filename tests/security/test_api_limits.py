"""Finding 2: the API escaped every per-member limit. A member could mint keys without end (each
with its own rate and concurrency), and API text jobs skipped ``ATELIER_MAX_LIVE_REPLIES``, so
50 keys x 4 requests x n=4 put 800 jobs on the ``text`` queue ahead of everyone's chat.
(The flood measured against a real worker is ``test_api_flood.py``.)"""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from tests.factories import membership_of
from tests.helpers import ApiClient, make_key, principal_args, short_settings, tiny_request
from webapp.api import selectors, services
from webapp.api.models import ApiKey, TextJob
from webapp.api.params import chat_spec
from webapp.chat import services as chat
from webapp.core.jobs import QuotaExceeded

pytestmark = [pytest.mark.django_db]

MODEL = "smollm2-135m-instruct"


def _spec(n: int = 1):
    return chat_spec({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "n": n})


def _principal(secret: str):
    return selectors.key_authenticate(authorization=f"Bearer {secret}")


# --- Keys per member ----------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["bob", "carol"])  # a member, and a viewer: both capped
def test_a_member_cannot_mint_keys_without_end(project, persona, request, settings):
    settings.MAX_KEYS_PER_MEMBER = 3
    user = request.getfixturevalue(persona)
    for n in range(3):
        make_key(user, project, name=f"k{n}")
    with pytest.raises(ValidationError, match="the limit is 3"):
        make_key(user, project, name="one too many")
    assert ApiKey.objects.filter(user=user).count() == 3


def test_the_key_cap_spans_the_teams_projects_and_frees_up_on_revoke(project, team, bob, settings):
    from tests.factories import ProjectFactory

    settings.MAX_KEYS_PER_MEMBER = 2
    second = ProjectFactory(team=team)
    first = make_key(bob, project).key
    make_key(bob, second)
    with pytest.raises(ValidationError):
        make_key(bob, project)
    services.key_revoke(actor=membership_of(bob, team), key=first)
    make_key(bob, project)  # a revoked key no longer counts


def test_the_keys_page_says_so_past_the_cap(client_for, project, bob, settings):
    settings.MAX_KEYS_PER_MEMBER = 1
    client = client_for(bob)
    url = reverse("api:keys", kwargs={"project_id": project.pk})
    client.post(url, {"name": "one"})
    response = client.post(url, {"name": "two"})
    assert response.status_code == 200 and "the limit is 1" in response.content.decode()
    assert response.context["new_secret"] is None and ApiKey.objects.count() == 1


# --- API text jobs count in the member's share of the text queue -------------------------------------


def test_api_text_jobs_count_in_the_live_replies_quota_across_keys(project, bob, no_enqueue, settings):
    settings.MAX_LIVE_REPLIES = 4
    keys = [make_key(bob, project, name=f"farm {n}") for n in range(3)]
    services.text_call_create(**principal_args(_principal(keys[0].secret)), spec=_spec(n=3), kind="chat")
    services.text_call_create(**principal_args(_principal(keys[1].secret)), spec=_spec(n=1), kind="chat")
    for key in keys:  # another key changes nothing: the quota is the member's
        with pytest.raises(QuotaExceeded):
            services.text_call_create(**principal_args(_principal(key.secret)), spec=_spec(), kind="chat")
    assert TextJob.objects.count() == 4


def test_a_request_over_the_quota_is_429_and_queues_nothing(project, bob, no_enqueue, settings, redis_server):
    settings.MAX_LIVE_REPLIES, settings.API_QUEUE_TIMEOUT = 2, 0.5
    key = make_key(bob, project)
    services.text_call_create(**principal_args(_principal(key.secret)), spec=_spec(n=2), kind="chat")
    response = ApiClient(make_key(bob, project, name="other").secret).post(
        "/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]})
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "quota_exceeded" and response["Retry-After"]
    assert TextJob.objects.count() == 2


def test_api_jobs_and_chat_replies_share_one_quota(project, bob, conversation_of_bob, no_enqueue, settings):
    settings.MAX_LIVE_REPLIES = 2
    key = make_key(bob, project)
    services.text_call_create(**principal_args(_principal(key.secret)), spec=_spec(n=2), kind="chat")
    with pytest.raises(QuotaExceeded):
        chat.message_send(conversation=conversation_of_bob, actor=membership_of(bob, project.team), text="hi",
                          parent=None, reply_settings=short_settings())


def test_chat_replies_count_against_api_requests(project, bob, conversation_of_bob, no_enqueue, settings):
    settings.MAX_LIVE_REPLIES = 1
    chat.message_send(conversation=conversation_of_bob, actor=membership_of(bob, project.team), text="hi",
                      parent=None, reply_settings=short_settings())
    with pytest.raises(QuotaExceeded):
        services.text_call_create(**principal_args(_principal(make_key(bob, project).secret)), spec=_spec(), kind="chat")


def test_another_members_jobs_do_not_count(project, alice, bob, no_enqueue, settings):
    settings.MAX_LIVE_REPLIES = 2
    services.text_call_create(**principal_args(_principal(make_key(bob, project).secret)), spec=_spec(n=2), kind="chat")
    services.text_call_create(**principal_args(_principal(make_key(alice, project).secret)), spec=_spec(n=2), kind="chat")


def test_api_image_jobs_count_in_the_image_queue_quota_and_answer_429(project, bob, no_enqueue, settings,
                                                                       redis_server):
    from webapp.studio import services as studio

    settings.MAX_QUEUED_IMAGE_JOBS, settings.API_QUEUE_TIMEOUT = 1, 0.5
    studio.job_create(project=project, actor=membership_of(bob, project.team), request=tiny_request())
    response = ApiClient(make_key(bob, project).secret).post("/v1/images/generations", {"prompt": "a red circle"})
    assert response.status_code == 429 and response.json()["error"]["code"] == "quota_exceeded"


@pytest.fixture
def conversation_of_bob(project, bob):
    return chat.conversation_create(project=project, actor=membership_of(bob, project.team),
                                    reply_settings=short_settings())


# --- Fair share on the text queue: chat replies and API text jobs of every member ---------------------


@pytest.fixture
def text_runs(monkeypatch):
    """The jobs whose tasks ran (instead of decoding: no engine here)."""
    ran: list = []
    monkeypatch.setattr(services, "text_job_run", lambda **kwargs: ran.append(("api", kwargs["job_id"])))
    monkeypatch.setattr(chat, "reply_run", lambda **kwargs: ran.append(("chat", kwargs["message_id"])))
    return ran


def _running(rows) -> None:
    from django.utils import timezone

    now = timezone.now()
    type(rows[0]).objects.filter(pk__in=[r.pk for r in rows]).update(status="running", started_at=now, heartbeat_at=now)


def test_a_flooders_next_job_goes_back_while_anothers_chat_waits(project, alice, bob, no_enqueue, settings, text_runs):
    from webapp.api.tasks import run_text_job
    from webapp.chat.tasks import generate_reply

    settings.MAX_LIVE_REPLIES = 0  # no quota here: the order alone
    flood = services.text_call_create(**principal_args(_principal(make_key(bob, project).secret)), spec=_spec(n=4), kind="chat")
    _running(flood[:2])
    conversation = chat.conversation_create(project=project, actor=membership_of(alice, project.team),
                                            reply_settings=short_settings())
    reply = chat.message_send(conversation=conversation, actor=membership_of(alice, project.team), text="hi",
                              parent=None, reply_settings=short_settings())
    run_text_job.run(flood[2].pk)  # bob already runs 2, alice runs none and waits: bob's job goes back
    assert text_runs == []
    assert [(t.name, t.args, t.queue) for t in no_enqueue] == [("api.run_text_job", [flood[2].pk, 1], "text")]
    generate_reply.run(reply.pk)  # alice's turn
    assert text_runs == [("chat", reply.pk)]


def test_alone_on_the_queue_a_member_runs_as_many_as_the_quota_allows(project, bob, no_enqueue, settings, text_runs):
    from webapp.api.tasks import run_text_job

    settings.MAX_LIVE_REPLIES = 0
    flood = services.text_call_create(**principal_args(_principal(make_key(bob, project).secret)), spec=_spec(n=4), kind="chat")
    _running(flood[:3])
    run_text_job.run(flood[3].pk)
    assert text_runs == [("api", flood[3].pk)] and not no_enqueue


def test_a_deferred_job_runs_after_at_most_a_bounded_number_of_turns(project, alice, bob, no_enqueue, settings,
                                                                     text_runs):
    from webapp.api.tasks import run_text_job
    from webapp.core.jobs import MAX_DEFERRALS

    settings.MAX_LIVE_REPLIES = 0
    flood = services.text_call_create(**principal_args(_principal(make_key(bob, project).secret)), spec=_spec(n=2), kind="chat")
    _running(flood[:1])
    services.text_call_create(**principal_args(_principal(make_key(alice, project).secret)), spec=_spec(), kind="chat")
    run_text_job.run(flood[1].pk, MAX_DEFERRALS)  # alice's job never got its task: bob's runs anyway
    assert text_runs == [("api", flood[1].pk)]
