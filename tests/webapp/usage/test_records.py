"""One usage record per finished job, for every kind, written by the lifecycle's ``job_finished``."""
from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from tests.helpers import finished_image_job, make_key, membership, short_settings, tiny_request
from webapp.api import services as api
from webapp.api.params import chat_spec
from webapp.api.selectors import key_authenticate
from webapp.chat import services as chat
from webapp.core import jobs
from webapp.core.jobs import JobStatus
from webapp.reviews import services as reviews
from webapp.reviews.models import AssetKind
from webapp.reviews.tasks import build_approved_export
from webapp.studio import services as studio
from webapp.studio.models import Job
from webapp.usage.models import UsageRecord

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("redis_server")]


def _record(kind: str, job_id: int) -> UsageRecord:
    return UsageRecord.objects.get(kind=kind, job_id=job_id)


def _reply(conversation, user, tiny_model, **params):
    return chat.message_send(conversation=conversation, actor=membership(user, conversation.project),
                             text="Say something", parent=None,
                             reply_settings=short_settings(model_name=tiny_model, **params))


def test_a_finished_chat_reply_records_its_tokens_and_compute(conversation, bob, tiny_model, no_enqueue, project):
    reply = _reply(conversation, bob, tiny_model, max_new_tokens=12, strategy="greedy")
    done = chat.reply_run(message_id=reply.pk, worker="w@h")
    record = _record("chat.reply", reply.pk)
    assert (record.team_id, record.project_id, record.user_id) == (project.team_id, project.pk, bob.pk)
    assert (record.status, record.interface, record.model_name) == ("done", "web", tiny_model)
    assert (record.prompt_tokens, record.completion_tokens) == (done.prompt_tokens, done.completion_tokens)
    assert record.completion_tokens > 0 and record.compute_seconds > 0
    assert record.key_id is None and record.images == 0


def test_a_reply_stopped_in_the_queue_records_no_compute_but_its_wait(conversation, bob, tiny_model, no_enqueue):
    reply = _reply(conversation, bob, tiny_model)
    chat.reply_stop(message=reply, actor=membership(bob, conversation.project))
    record = _record("chat.reply", reply.pk)
    assert record.status == "stopped" and record.compute_seconds == 0 and record.completion_tokens == 0
    assert record.queue_seconds >= 0


def test_a_reply_stopped_while_running_records_what_it_decoded(conversation, bob, tiny_model, no_enqueue):
    reply = _reply(conversation, bob, tiny_model, max_new_tokens=200)
    jobs.job_stop_request(kind=chat.REPLY, job=reply)  # seen at the first token
    done = chat.reply_run(message_id=reply.pk)
    record = _record("chat.reply", reply.pk)
    assert done.status == record.status == JobStatus.STOPPED
    assert record.completion_tokens == (done.completion_tokens or 0) and record.prompt_tokens > 0


def test_an_api_text_job_records_its_key_and_the_api_interface(project, bob, tiny_model, no_enqueue,
                                                                django_capture_on_commit_callbacks):
    key = make_key(bob, project, name="notebook")
    principal = key_authenticate(authorization=f"Bearer {key.secret}")
    spec = chat_spec({"model": tiny_model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8})
    with django_capture_on_commit_callbacks(execute=True):
        (job,) = api.text_call_create(actor=principal.membership, key=principal.key, spec=spec, kind="chat")
    done = api.text_job_run(job_id=job.pk, worker="w")
    record = _record("api.text", job.pk)
    assert (record.interface, record.key_id, record.key_name, record.user_id) == ("api", principal.key.pk, "notebook", bob.pk)
    assert record.completion_tokens == done.completion_tokens > 0 and record.compute_seconds > 0


def test_an_image_job_records_images_pixels_steps_and_bytes(project, bob, no_enqueue):
    job = finished_image_job(project=project, user=bob, colours=("red", "blue"))
    record = _record("studio.image", job.pk)
    sizes = sum(asset.byte_size for asset in job.assets.all())
    assert (record.images, record.pixels, record.steps) == (2, 2 * 32 * 32, 4)
    assert record.bytes_stored == sizes > 0 and record.status == "done" and record.user_id == bob.pk
    assert record.model_name == job.model_name and record.interface == "web"


def test_an_image_job_failed_mid_run_records_the_steps_it_made(project, bob, no_enqueue):
    job = studio.job_create(project=project, actor=membership(bob, project), request=tiny_request(steps=8))
    studio.job_start(job_id=job.pk, worker="w")
    Job.objects.filter(pk=job.pk).update(steps_done=3, started_at=timezone.now() - timedelta(seconds=2))
    assert jobs.job_fail(kind="studio.image", job_id=job.pk, reason="The GPU fell over.")
    record = _record("studio.image", job.pk)
    assert (record.status, record.steps, record.images) == ("failed", 3, 0)
    assert record.compute_seconds >= 2


def test_an_export_records_the_bytes_of_its_zip(project, make_image, alice, bob):
    image = make_image(project=project, author=bob)
    (review,) = reviews.review_request_create(actor=membership(bob, project), project=project,
                                              kind=AssetKind.IMAGE, asset_ids=[image.pk], reviewer_ids=[alice.pk])
    reviews.verdict_give(actor=membership(alice, project), review=review, decision="approve")
    export = reviews.export_create(actor=membership(alice, project), project=project)
    build_approved_export(export.pk)
    export.refresh_from_db()
    record = _record("reviews.export", export.pk)
    assert record.bytes_stored == export.byte_size > 0 and record.user_id == alice.pk and record.status == "done"


def test_every_end_path_writes_exactly_one_record(project, bob, no_enqueue, monkeypatch, settings):
    def queued():
        return studio.job_create(project=project, actor=membership(bob, project), request=tiny_request())

    stopped, expired, swept, lost = queued(), queued(), queued(), queued()
    jobs.job_stop(kind="studio.image", job=stopped)
    jobs.job_expire(kind="studio.image", job_id=expired.pk, waited=5)
    for job in (swept, lost):
        jobs.job_claim(kind="studio.image", job_id=job.pk, worker="gone", values={"task_id": f"t{job.pk}"})
    Job.objects.filter(pk=swept.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    jobs.jobs_sweep_stale()
    jobs.fail_job_of_a_lost_task(sender=SimpleNamespace(name="studio.run_image_job"), args=[0],
                                 exception=RuntimeError("killed"), task_id=f"t{lost.pk}")
    jobs.job_fail(kind="studio.image", job_id=swept.pk, reason="again")  # already ended: no second record
    statuses = dict(UsageRecord.objects.values_list("job_id", "status"))
    assert statuses == {stopped.pk: "stopped", expired.pk: "failed", swept.pk: "failed", lost.pk: "failed"}


def test_a_failing_receiver_never_undoes_the_end(project, bob, no_enqueue, monkeypatch):
    from webapp.usage import metering

    def broken(**kwargs):
        raise RuntimeError("usage is down")

    monkeypatch.setattr("webapp.usage.services.job_read", broken)
    job = studio.job_create(project=project, actor=membership(bob, project), request=tiny_request())
    assert jobs.job_stop(kind="studio.image", job=job) == JobStatus.STOPPED
    job.refresh_from_db()
    assert job.status == JobStatus.STOPPED and not UsageRecord.objects.exists()
    assert metering.plan_for(Job, "").lookups["project_id"] == "project_id"


def test_a_new_kind_is_metered_by_its_columns_alone():
    from webapp.chat.models import Message
    from webapp.usage.metering import plan_for

    plan = plan_for(Message, "author_id")
    assert plan.lookups["team_id"] == "conversation__project__team_id" and plan.lookups["user_id"] == "author_id"
    assert plan_for(Job, "").images == ("assets",) and plan_for(Job, "").lookups["key_id"] == "api_call__key_id"


def test_a_rebuild_gives_the_same_sums_as_the_finish_writes(project, bob, no_enqueue):
    from webapp.usage.models import UsageDay, UsageMonth
    from webapp.usage.services import usage_rollups_rebuild

    finished_image_job(project=project, user=bob, colours=("red", "blue"))
    finished_image_job(project=project, user=bob, colours=("red",))

    def state():
        return (sorted(UsageDay.objects.values_list("day", "user_ref", "jobs", "images", "pixels")),
                sorted(UsageMonth.objects.values_list("month", "scope", "images")))

    written = state()
    assert written[0] and written[0][0][2:4] == (2, 3)
    assert usage_rollups_rebuild(team_id=project.team_id) == 2
    assert state() == written


@pytest.mark.parametrize("kind", ["chat.reply", "api.text"])
def test_text_jobs_of_either_interface_record_the_engine_share_of_a_batch(kind, conversation, project, bob, tiny_model,
                                                                          no_enqueue, monkeypatch,
                                                                          django_capture_on_commit_callbacks):
    from webapp.core import textjobs

    seen = []

    def batched(outcome):  # the engine ran this request in a batch of 4 rows on average
        elapsed = outcome.final.elapsed
        seen.append(elapsed / 4)
        return {"compute_seconds": elapsed / 4, "batch_mean": 4.0}

    monkeypatch.setattr(textjobs, "_measured", batched)
    if kind == "chat.reply":
        job_id = _reply(conversation, bob, tiny_model, max_new_tokens=8, strategy="greedy").pk
        chat.reply_run(message_id=job_id, worker="w")
    else:
        key = make_key(bob, project)
        principal = key_authenticate(authorization=f"Bearer {key.secret}")
        spec = chat_spec({"model": tiny_model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8})
        with django_capture_on_commit_callbacks(execute=True):
            (job,) = api.text_call_create(actor=principal.membership, key=principal.key, spec=spec, kind="chat")
        job_id = job.pk
        api.text_job_run(job_id=job_id, worker="w")
    record = _record(kind, job_id)
    assert seen and record.compute_seconds == pytest.approx(seen[0]) and record.compute_seconds > 0


def test_a_reply_ended_without_a_measure_counts_its_time_as_an_api_job_would(conversation, bob, tiny_model, no_enqueue):
    reply = _reply(conversation, bob, tiny_model)
    start = timezone.now() - timedelta(seconds=8)
    type(reply).objects.filter(pk=reply.pk).update(status=JobStatus.RUNNING, started_at=start, batch_mean=4.0)
    jobs.job_finish(kind=chat.REPLY, job_id=reply.pk, status=JobStatus.FAILED, reason="lost")
    record = _record("chat.reply", reply.pk)
    assert record.compute_seconds >= 8  # the wall time: the row's batch column is the API's blind spot, not read
