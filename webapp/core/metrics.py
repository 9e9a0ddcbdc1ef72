"""Prometheus metrics, read at scrape time from the database, the broker and the worker heartbeats.

Read, not counted in process: jobs run on many worker hosts and the web side
has several processes, so any in-process counter would show one process's
share. The database already holds every job, its tokens, steps and timings,
and all web processes give the same answer. Counters are sums over the rows
that exist: deleting a conversation lowers them, which Prometheus reads as a
counter reset, so ``rate()`` stays right.

Job kinds are looked up by app label (``chat``, ``studio``), not imported:
``core`` is the bottom layer.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.db.models import Count, F, Q, Sum
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from webapp.core.health import queue_depths
from webapp.core.workers import workers_by_queue, workers_seen

TTFT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
RECENT = timedelta(minutes=5)


def _reply_model() -> Any:
    return apps.get_model("chat", "Message") if apps.is_installed("webapp.chat") else None


def _image_job_model() -> Any:
    return apps.get_model("studio", "Job") if apps.is_installed("webapp.studio") else None


class AtelierCollector:
    def collect(self) -> Iterator[Metric]:
        yield from self._jobs()
        yield from self._queues()
        yield from self._text()
        yield from self._image()

    def _jobs(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily("atelier_jobs", "Jobs by kind and status", labels=["kind", "status"])
        kinds: list[tuple[str, Any]] = []
        if (reply := _reply_model()) is not None:
            kinds.append(("chat_reply", reply.objects.filter(role="assistant")))
        if (job := _image_job_model()) is not None:
            kinds.append(("image", job.objects.all()))
        for kind, queryset in kinds:
            for row in queryset.order_by().values("status").annotate(n=Count("id")):
                jobs.add_metric([kind, row["status"]], row["n"])
        yield jobs

    def _queues(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("atelier_queue_depth", "Messages waiting in the broker", labels=["queue"])
        for queue, count in queue_depths().items():
            if count is not None:
                depth.add_metric([queue], count)
        yield depth
        workers = GaugeMetricFamily("atelier_workers", "Workers alive (heartbeat seen) per queue", labels=["queue"])
        for queue, seen in workers_by_queue(workers_seen()).items():
            workers.add_metric([queue], sum(1 for w in seen if w.alive))
        yield workers

    def _text(self) -> Iterator[Metric]:
        reply = _reply_model()
        if reply is None:
            return
        finished = reply.objects.filter(role="assistant", completion_tokens__isnull=False)
        total = finished.aggregate(tokens=Sum("completion_tokens"))["tokens"] or 0
        yield CounterMetricFamily("atelier_tokens", "Tokens decoded by all workers", value=total)
        recent = finished.filter(finished_at__gte=timezone.now() - RECENT, elapsed__gt=0).aggregate(
            tokens=Sum("completion_tokens"), seconds=Sum("elapsed")
        )
        speed = (recent["tokens"] or 0) / recent["seconds"] if recent["seconds"] else 0.0
        yield GaugeMetricFamily(
            "atelier_tokens_per_second", "Decode speed of the replies that ended in the last 5 minutes", value=speed
        )
        timed = reply.objects.filter(role="assistant", time_to_first_token__isnull=False)
        counts = timed.aggregate(
            total=Sum("time_to_first_token"), n=Count("id"),
            **{f"le{i}": Count("id", filter=Q(time_to_first_token__lte=b)) for i, b in enumerate(TTFT_BUCKETS)},
        )
        buckets = [(str(b), counts[f"le{i}"]) for i, b in enumerate(TTFT_BUCKETS)] + [("+Inf", counts["n"])]
        yield HistogramMetricFamily(
            "atelier_time_to_first_token_seconds", "Time from a reply's start to its first token",
            buckets=buckets, sum_value=counts["total"] or 0.0,
        )

    def _image(self) -> Iterator[Metric]:
        job = _image_job_model()
        if job is None:
            return
        total = job.objects.aggregate(steps=Sum("steps_done"))["steps"] or 0
        yield CounterMetricFamily("atelier_image_steps", "Denoising steps done by all workers", value=total)
        recent = job.objects.filter(
            finished_at__gte=timezone.now() - RECENT, seconds_per_step__gt=0, steps_done__gt=0
        ).aggregate(steps=Sum("steps_done"), seconds=Sum(F("seconds_per_step") * F("steps_done")))
        speed = (recent["steps"] or 0) / recent["seconds"] if recent["seconds"] else 0.0
        yield GaugeMetricFamily(
            "atelier_image_steps_per_second", "Denoising speed of the image jobs that ended in the last 5 minutes",
            value=speed,
        )


def metrics_text() -> bytes:
    """The exposition text of a fresh registry: nothing lingers between scrapes."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AtelierCollector())  # type: ignore[arg-type]
    return generate_latest(registry)
