"""Monthly budgets of a team, a project and a member, checked where a job is accepted."""
from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from tests.factories import ProjectFactory
from tests.helpers import ApiClient, make_key, membership, short_settings, tiny_request
from webapp.chat import services as chat
from webapp.chat.forms import settings_initial
from webapp.chat.selectors import conversation_settings
from webapp.studio import services as studio
from webapp.usage import selectors, services
from webapp.usage.models import Budget, BudgetNotice, UsageMonth, UsageRecord
from webapp.usage.services import BudgetExceeded

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("redis_server")]


def _used(project, user, *, tokens=0, images=0, compute=0.0, when=None, kind="chat.reply"):
    """A finished job's record, as the lifecycle writes it (job ids need only be unique per kind)."""
    record = UsageRecord.objects.create(
        team_id=project.team_id, project=project, user=user, kind=kind, job_id=UsageRecord.objects.count() + 1,
        status="done", completion_tokens=tokens, images=images, compute_seconds=compute,
        finished_at=when or timezone.now())
    services.usage_rollups_add(record=record)  # as usage_record_create does
    return record


def _send(conversation, user):
    return chat.message_send(conversation=conversation, actor=membership(user, conversation.project), text="Hi",
                             parent=None, reply_settings=short_settings())


def _image(project, user):
    return studio.job_create(project=project, actor=membership(user, project), request=tiny_request())


def test_a_budget_of_zero_blocks_and_the_message_names_the_limit_and_the_reset(conversation, alice, bob,
                                                                                no_enqueue):
    services.budget_set(actor=membership(alice, conversation.project), tokens="0")
    with pytest.raises(BudgetExceeded) as refused:
        _send(conversation, bob)
    _start, resets = selectors.month_bounds(tz=ZoneInfo("UTC"))
    message = refused.value.messages[0]
    assert "The team's monthly budget is 0 tokens" in message and f"resets on 1 {resets:%B %Y} at 00:00 (UTC)" in message
    assert refused.value.code == "budget" and refused.value.resets_at == resets


def test_an_empty_budget_is_no_limit_and_removes_the_budget(conversation, alice, bob, no_enqueue):
    services.budget_set(actor=membership(alice, conversation.project), tokens="0")
    assert services.budget_set(actor=membership(alice, conversation.project), tokens="", images=" ") is None
    assert not Budget.objects.exists()
    assert _send(conversation, bob).status == "queued"


def test_a_used_up_budget_blocks_new_jobs_below_it_passes(conversation, project, alice, bob, no_enqueue):
    _used(project, bob, tokens=100)
    services.budget_set(actor=membership(alice, project), tokens=101)
    assert _send(conversation, bob).status == "queued"
    services.budget_set(actor=membership(alice, project), tokens=100)  # lowered to the use: new jobs only
    with pytest.raises(BudgetExceeded, match="100 tokens, and 100 tokens are used this month"):
        _send(conversation, bob)


def test_a_member_budget_binds_only_that_member_and_a_project_budget_only_that_project(
        conversation, project, team, alice, bob, no_enqueue):
    other = ProjectFactory(team=team, created_by=alice)
    _used(project, bob, tokens=50)
    services.budget_set(actor=membership(alice, project), user_id=bob.pk, tokens=50)
    with pytest.raises(BudgetExceeded, match="Your monthly budget is 50 tokens"):
        _send(conversation, bob)
    assert _send(conversation, alice).status == "queued"
    Budget.objects.all().delete()
    services.budget_set(actor=membership(alice, project), project=other, tokens=10)
    assert _send(conversation, bob).status == "queued"  # the budget of another project


def test_an_image_budget_leaves_chat_alone_and_a_compute_budget_binds_both(conversation, project, alice, bob,
                                                                           no_enqueue):
    services.budget_set(actor=membership(alice, project), images=0)
    assert _send(conversation, bob).status == "queued"
    with pytest.raises(BudgetExceeded, match="0 images"):
        _image(project, bob)
    services.budget_set(actor=membership(alice, project), compute_seconds=0)
    with pytest.raises(BudgetExceeded, match="0 compute seconds"):
        _send(conversation, bob)


@pytest.mark.parametrize(("field", "value", "says"), [
    ("tokens", "-1", "Tokens: a budget cannot be negative"),
    ("images", "lots", "Images: enter a whole number"),
    ("compute_seconds", "1.5", "Compute seconds: enter a whole number"),
])
def test_bad_numbers_are_refused_by_name_and_nothing_is_written(project, alice, field, value, says):
    with pytest.raises(ValidationError) as refused:
        services.budget_set(actor=membership(alice, project), **{field: value})
    assert says in refused.value.message_dict[field][0] and not Budget.objects.exists()


def test_members_and_viewers_cannot_set_budgets(project, bob, carol):
    for user in (bob, carol):
        with pytest.raises(PermissionDenied):
            services.budget_set(actor=membership(user, project), tokens=5)
    assert not Budget.objects.exists()


def test_an_unknown_time_zone_is_refused_by_name(project, alice):
    with pytest.raises(ValidationError) as refused:
        services.team_time_zone_set(actor=membership(alice, project), time_zone="Mars/Olympus")
    assert "Time zone" in refused.value.message_dict["time_zone"][0]


def test_the_month_begins_in_the_team_time_zone(conversation, project, alice, bob, no_enqueue):
    utc_start, _ = selectors.month_bounds(tz=ZoneInfo("UTC"))
    before_utc_midnight = utc_start - timedelta(minutes=30)  # last month in UTC, this month in Paris
    services.budget_set(actor=membership(alice, project), tokens=10)
    _used(project, bob, tokens=10, when=before_utc_midnight)
    assert _send(conversation, bob).status == "queued"  # UTC: that was last month's
    UsageRecord.objects.all().delete()
    UsageMonth.objects.all().delete()
    services.team_time_zone_set(actor=membership(alice, project), time_zone="Europe/Paris")
    _used(project, bob, tokens=10, when=before_utc_midnight)
    with pytest.raises(BudgetExceeded, match=r"\(Europe/Paris\)"):
        _send(conversation, bob)


def test_a_running_job_is_never_cut_by_a_new_budget(conversation, project, alice, bob, no_enqueue):
    from webapp.core import jobs

    reply = _send(conversation, bob)
    assert jobs.job_claim(kind=chat.REPLY, job_id=reply.pk, worker="w")
    services.budget_set(actor=membership(alice, project), tokens=0, compute_seconds=0)
    assert jobs.job_finish(kind=chat.REPLY, job_id=reply.pk, status="done", values={"completion_tokens": 3})
    assert UsageRecord.objects.get(job_id=reply.pk, kind="chat.reply").completion_tokens == 3


def test_at_eighty_percent_a_notice_is_made_once_and_again_at_the_limit(project, alice, bob):
    services.budget_set(actor=membership(alice, project), images=10)
    assert services.budget_notices_update(record=_used(project, bob, images=7, kind="studio.image")) == []
    (notice,) = services.budget_notices_update(record=_used(project, bob, images=1, kind="studio.image"))
    assert (notice.level, notice.metric, notice.used, notice.limit) == (80, "images", 8, 10)
    assert services.budget_notices_update(record=_used(project, bob, images=1, kind="studio.image")) == []
    (full,) = services.budget_notices_update(record=_used(project, bob, images=1, kind="studio.image"))
    assert full.level == 100


def test_the_lifecycle_record_makes_the_notice(project, alice, bob, no_enqueue):
    from tests.helpers import finished_image_job

    services.budget_set(actor=membership(alice, project), user_id=bob.pk, images=2)
    finished_image_job(project=project, user=bob, colours=("red", "blue"))
    assert list(BudgetNotice.objects.values_list("level", "metric", "used")) == [(100, "images", 2)]


def test_the_api_answers_429_insufficient_quota(project, alice, bob, no_enqueue):
    services.budget_set(actor=membership(alice, project), user_id=bob.pk, tokens=0)
    api = ApiClient(make_key(bob, project).secret)
    response = api.post("/v1/chat/completions", {"model": "smollm2-135m-instruct",
                                                 "messages": [{"role": "user", "content": "Hi"}]})
    assert response.status_code == 429, response.content
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("insufficient_quota", "insufficient_quota")
    assert "Your monthly budget is 0 tokens" in error["message"] and "resets on" in error["message"]


def test_the_chat_page_shows_the_budget_message(conversation, project, alice, bob, client_for, no_enqueue):
    services.budget_set(actor=membership(alice, project), tokens=0)
    form = {**settings_initial(conversation_settings(conversation=conversation)), "text": "Hi", "parent": ""}
    form["stop"] = "\n".join(form["stop"]) if isinstance(form["stop"], list) else form["stop"]
    url = reverse("chat:conversation_send", args=[project.pk, conversation.pk])
    response = client_for(bob).post(url, {k: "" if v is None else v for k, v in form.items()},
                                    headers={"HX-Request": "true"})
    assert "The team&#x27;s monthly budget is 0 tokens" in response.content.decode()
    assert "It resets on 1 " in response.content.decode()


def test_an_image_budget_binds_the_api_images_too(project, alice, bob, no_enqueue, settings):
    from webapp.studio.models import Job

    settings.API_QUEUE_TIMEOUT = 0.2
    services.budget_set(actor=membership(alice, project), images=0)
    api = ApiClient(make_key(bob, project).secret)
    response = api.post("/v1/images/generations", {"prompt": "a red circle", "size": "32x32"})
    assert response.status_code == 429 and response.json()["error"]["code"] == "insufficient_quota"
    assert "The team's monthly budget is 0 images" in response.json()["error"]["message"]
    assert not Job.objects.exists()
