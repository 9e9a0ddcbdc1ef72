"""Per-team usage counters for Prometheus, read at scrape time from the usage records (one query).

Labels are bounded: the team by id (never a name), the job kind (registered kinds) and the
model (the configured models). No user names, no keys.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import F, Sum
from django.db.models.functions import Coalesce
from prometheus_client.core import CounterMetricFamily

from webapp.usage.models import UsageRecord

LABELS = ["team", "kind", "model"]


class UsageCollector:
    def collect(self) -> Iterator[Any]:
        tokens = CounterMetricFamily("atelier_team_tokens", "Tokens (prompt and completion) used, per team",
                                     labels=LABELS)
        images = CounterMetricFamily("atelier_team_images", "Images made, per team", labels=LABELS)
        compute = CounterMetricFamily("atelier_team_compute_seconds",
                                      "Worker seconds used (batched steps shared), per team", labels=LABELS)
        rows = (UsageRecord.objects.values("team_id", "kind", "model_name").order_by()
                .annotate(used_tokens=Coalesce(Sum(F("prompt_tokens") + F("completion_tokens")), 0),
                          used_images=Coalesce(Sum("images"), 0), used_compute=Coalesce(Sum("compute_seconds"), 0.0)))
        for row in rows:
            labels = [str(row["team_id"]), row["kind"].replace(".", "_"), row["model_name"] or "none"]
            tokens.add_metric(labels, row["used_tokens"])
            images.add_metric(labels, row["used_images"])
            compute.add_metric(labels, row["used_compute"])
        yield tokens
        yield images
        yield compute
