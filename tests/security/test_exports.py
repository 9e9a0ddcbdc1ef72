"""Finding 4: export flooding. Any member, viewers included, could queue exports without end,
keep every zip for ever, and fill the queue that the stale-job sweep shared with them."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from tests.factories import membership_of
from webapp.core.jobs import JobStatus
from webapp.reviews import services
from webapp.reviews.models import ApprovedExport

pytestmark = [pytest.mark.django_db]


def test_a_viewer_cannot_queue_exports_without_end(project, carol, no_enqueue, settings):
    settings.MAX_LIVE_EXPORTS = 0  # only the member's own rate limits here
    settings.EXPORTS_PER_MEMBER_PER_HOUR = 3
    for _ in range(3):
        export = services.export_create(actor=membership_of(carol, project.team), project=project)
        ApprovedExport.objects.filter(pk=export.pk).update(status=JobStatus.DONE)  # built: not live any more
    with pytest.raises(ValidationError, match="in the last hour"):
        services.export_create(actor=membership_of(carol, project.team), project=project)
    assert ApprovedExport.objects.count() == 3


def test_the_hourly_rate_is_per_member(project, bob, carol, no_enqueue, settings):
    settings.MAX_LIVE_EXPORTS, settings.EXPORTS_PER_MEMBER_PER_HOUR = 0, 1
    services.export_create(actor=membership_of(carol, project.team), project=project)
    services.export_create(actor=membership_of(bob, project.team), project=project)
    an_hour_ago = timezone.now() - timedelta(hours=1, seconds=1)
    ApprovedExport.objects.update(created_at=an_hour_ago)
    services.export_create(actor=membership_of(carol, project.team), project=project)  # a new hour
    assert ApprovedExport.objects.count() == 3


def test_a_project_has_at_most_a_few_live_exports(project, alice, bob, carol, no_enqueue, settings):
    settings.MAX_LIVE_EXPORTS, settings.EXPORTS_PER_MEMBER_PER_HOUR = 2, 100
    services.export_create(actor=membership_of(bob, project.team), project=project)
    services.export_create(actor=membership_of(carol, project.team), project=project)
    with pytest.raises(ValidationError, match="the limit is 2"):
        services.export_create(actor=membership_of(alice, project.team), project=project)
    ApprovedExport.objects.filter(requested_by=bob).update(status=JobStatus.DONE)
    services.export_create(actor=membership_of(alice, project.team), project=project)


def test_the_export_button_past_the_cap_says_why_and_queues_nothing(client_for, project, carol, no_enqueue, settings):
    settings.MAX_LIVE_EXPORTS = 1
    url = reverse("reviews:export_create", kwargs={"project_id": project.pk})
    client = client_for(carol)
    client.post(url)
    response = client.post(url, follow=True)
    assert response.status_code == 200
    assert "the limit is 1" in response.content.decode()
    assert ApprovedExport.objects.count() == 1


def test_an_old_export_zip_is_deleted_and_its_row_marked(client_for, project, alice, carol, no_enqueue, settings):
    from webapp.reviews.tasks import expire_exports

    settings.EXPORT_TTL_DAYS = 7
    old, fresh = (services.export_create(actor=membership_of(alice, project.team), project=project) for _ in range(2))
    for export, age in ((old, 8), (fresh, 1)):
        name = default_storage.save(f"exports/{project.pk}/test-{export.pk}.zip", ContentFile(b"PK\x05\x06" + bytes(18)))
        ApprovedExport.objects.filter(pk=export.pk).update(
            status=JobStatus.DONE, file=name, finished_at=timezone.now() - timedelta(days=age))
    old_name = ApprovedExport.objects.get(pk=old.pk).file
    assert expire_exports.run() == 1
    old.refresh_from_db()
    assert old.expired_at is not None and old.file == "" and not default_storage.exists(old_name)
    assert default_storage.exists(ApprovedExport.objects.get(pk=fresh.pk).file)
    download = reverse("reviews:export_download", kwargs={"project_id": project.pk, "export_id": old.pk})
    assert client_for(carol).get(download).status_code == 404
    status = reverse("reviews:export_status", kwargs={"project_id": project.pk, "export_id": old.pk})
    assert "Expired" in client_for(carol).get(status).content.decode()
    assert expire_exports.run() == 0  # once


def test_the_beat_runs_the_sweep_and_the_expiry_on_a_queue_no_user_work_fills():
    from webapp.celery import app
    from webapp.core.jobs import job_kinds
    from webapp.worker import QUEUES

    schedule = django_settings.CELERY_BEAT_SCHEDULE
    queues = {schedule[name]["options"]["queue"] for name in ("sweep-stale-jobs", "expire-exports")}
    assert queues == {"maintenance"}
    assert "maintenance" not in {kind.queue for kind in job_kinds()}  # no job kind (exports included) goes there
    assert "maintenance" in {queue.name for queue in app.conf.task_queues}
    # Every way workers start consumes it: make run's Procfile, the suite's worker ("all"), the launcher.
    assert "maintenance" in QUEUES["maintenance"] and "maintenance" in QUEUES["all"]
    procfile = (Path(django_settings.BASE_DIR) / "Procfile").read_text()
    assert "python -m webapp.worker maintenance" in procfile
    makefile = (Path(django_settings.BASE_DIR) / "Makefile").read_text()
    assert "maintenance-worker" in makefile
