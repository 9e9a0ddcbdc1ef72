"""The queued-image-jobs quota (``MAX_QUEUED_IMAGE_JOBS``): past it a new job is refused with a
clear error next to the button, nothing is written or queued, and nothing already queued is lost."""
from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import membership_of
from tests.helpers import tiny_request
from webapp.core.jobs import QuotaExceeded
from webapp.prompts.models import PromptRecord
from webapp.studio import services
from webapp.studio.models import Job, JobStatus

pytestmark = pytest.mark.django_db(transaction=True)  # enqueues happen on commit

FORM = {
    "prompt": "a green triangle", "negative_prompt": "", "model": "atelier-shapes", "scheduler": "dpmpp_2m",
    "steps": "6", "guidance_scale": "3", "width": "32", "height": "32", "num_images": "1", "seed": "",
}


@pytest.fixture(autouse=True)
def quota(settings):
    settings.MAX_QUEUED_IMAGE_JOBS = 2


def _snapshot():
    return sorted(Job.objects.values_list("pk", "status")), PromptRecord.objects.count()


def test_job_create_past_the_quota_is_refused_and_loses_nothing(project, alice, bob, make_job, no_enqueue):
    make_job(project=project, author=bob)
    make_job(project=project, author=bob)
    before, queued = _snapshot(), list(no_enqueue)
    with pytest.raises(QuotaExceeded, match="You already have 2 image jobs waiting; the limit is 2"):
        services.job_create(project=project, actor=membership_of(bob), request=tiny_request())
    assert _snapshot() == before and no_enqueue == queued and len(queued) == 2
    make_job(project=project, author=alice)  # the quota is per person


def test_a_running_job_does_not_count_against_the_queued_quota(project, bob, make_job):
    first = make_job(project=project, author=bob)
    make_job(project=project, author=bob)
    services.job_start(job_id=first.pk, worker="w1")
    assert make_job(project=project, author=bob).status == JobStatus.QUEUED


def test_the_studio_form_says_so_next_to_the_button(project, bob, client_for, make_job, no_enqueue):
    make_job(project=project, author=bob)
    make_job(project=project, author=bob)
    before = _snapshot()
    response = client_for(bob).post(reverse("studio:index", args=[project.pk]), FORM, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'class="error form-error">You already have 2 image jobs waiting; the limit is 2.' in html
    assert 'value="a green triangle"' in html or "a green triangle" in html  # the form kept as typed
    assert _snapshot() == before and len(no_enqueue) == 2


def test_rerun_past_the_quota_says_so_and_queues_nothing(project, bob, client_for, make_job, no_enqueue):
    from tests.helpers import fake_result

    job = services.job_start(job_id=make_job(project=project, author=bob).pk, worker="w1")
    asset = services.job_complete(job=job, result=fake_result(job)).assets.get()
    make_job(project=project, author=bob)
    make_job(project=project, author=bob)
    before = _snapshot()
    response = client_for(bob).post(reverse("studio:asset_rerun", args=[project.pk, asset.pk]), follow=True)
    assert "Cannot run this again: You already have 2 image jobs waiting" in response.content.decode()
    assert _snapshot() == before
