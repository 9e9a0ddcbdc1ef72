"""Usage survives a project's export and import: the records move, pointing at the moved jobs."""
from __future__ import annotations

import pytest

from tests.helpers import finished_image_job, make_key
from webapp.studio.models import Job
from webapp.usage.models import UsageDay, UsageMonth, UsageRecord
from webapp.workspaces.transfer import project_export, project_import

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("redis_server")]


def test_usage_records_move_with_the_project(project, other_team, bob, no_enqueue, tmp_path):
    job = finished_image_job(project=project, user=bob, colours=("red", "blue"))
    make_key(bob, project)
    archive = tmp_path / "moved.tar.gz"
    summary = project_export(project=project, path=archive)
    assert summary.rows["usage.UsageRecord"] == 1

    copy = project_import(path=archive, team=other_team)

    moved = UsageRecord.objects.get(project=copy)
    new_job = Job.objects.get(project=copy)
    assert (moved.kind, moved.job_id, moved.team_id) == ("studio.image", new_job.pk, other_team.pk)
    assert new_job.pk != job.pk and (moved.images, moved.pixels) == (2, 2 * 32 * 32)
    assert moved.user.username == "bob"


def test_an_import_adds_the_moved_use_to_the_new_team_sums(project, other_team, bob, no_enqueue, tmp_path):
    finished_image_job(project=project, user=bob, colours=("red", "blue"))
    archive = tmp_path / "moved.tar.gz"
    project_export(project=project, path=archive)

    copy = project_import(path=archive, team=other_team)

    days = UsageDay.objects.filter(team=other_team)
    assert [(d.project_ref, d.user_ref, d.images, d.jobs) for d in days] == [(copy.pk, bob.pk, 2, 1)]
    months = {m.scope: m.images for m in UsageMonth.objects.filter(team=other_team)}
    assert months == {"team": 2, f"project:{copy.pk}": 2, f"member:{bob.pk}": 2}
    source = {m.scope: m.images for m in UsageMonth.objects.filter(team=project.team)}
    assert source["team"] == 2  # the source keeps what it used: the project was copied, not taken
