"""/metrics gets per-team usage counters, labelled by team id, kind and model only."""
from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from webapp.usage.models import UsageRecord

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("redis_server")]  # queue depths

TOKEN = "scrape-me"


def _scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get(reverse("core:metrics"), headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.content.decode()) for s in family.samples}


def _used(project, user, job_id, **values):
    return UsageRecord.objects.create(team_id=project.team_id, project=project, user=user, status="done",
                                      job_id=job_id, finished_at=timezone.now(), **values)


def test_the_metrics_count_each_team_by_kind_and_model_without_names(client, settings, project, other_project, bob,
                                                                     mallory):
    settings.METRICS_TOKEN = TOKEN
    _used(project, bob, 1, kind="chat.reply", model_name="smollm2", prompt_tokens=5, completion_tokens=7,
          compute_seconds=1.5)
    _used(project, bob, 2, kind="chat.reply", model_name="smollm2", completion_tokens=3, compute_seconds=0.5)
    _used(other_project, mallory, 3, kind="studio.image", model_name="tiny-sd", images=4, compute_seconds=9)
    samples = _scrape(client)
    mine = (("kind", "chat_reply"), ("model", "smollm2"), ("team", str(project.team_id)))
    theirs = (("kind", "studio_image"), ("model", "tiny-sd"), ("team", str(other_project.team_id)))
    assert samples[("atelier_team_tokens_total", mine)] == 15
    assert samples[("atelier_team_compute_seconds_total", mine)] == 2.0
    assert samples[("atelier_team_images_total", theirs)] == 4
    labels = {label for (name, pairs) in samples if name.startswith("atelier_team_") for label, _ in pairs}
    assert labels == {"team", "kind", "model"}
    text = client.get(reverse("core:metrics"), headers={"Authorization": f"Bearer {TOKEN}"}).content.decode()
    assert "bob" not in text and "mallory" not in text and "Acme" not in text
