"""Prometheus metrics, read at scrape time from the database, the broker and the worker heartbeats.

Read, not counted in process: jobs run on many worker hosts and the web side
has several processes, so any in-process counter would show one process's
share. The database already holds every job, its tokens, steps and timings,
and all web processes give the same answer. Counters are sums over the rows
that exist: deleting a conversation lowers them, which Prometheus reads as a
counter reset, so ``rate()`` stays right.

Every registered job kind (``webapp.core.jobs.job_kinds``) is counted; the
text and image figures come from the kinds whose rows carry token or step
columns. ``core`` is the bottom layer: it never imports the kinds' apps.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.db.models import Count, F, Q, Sum
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from webapp.core.health import queue_depths
from webapp.core.jobs import JobKind, job_kinds
from webapp.core.workers import workers_by_queue, workers_seen

TTFT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
RECENT = timedelta(minutes=5)


def _field_names(kind: JobKind) -> set[str]:
    return {f.name for f in kind.model._meta.get_fields()}


def _kinds_with(*names: str) -> list[JobKind]:
    """The registered kinds whose rows have every column in ``names``."""
    return [kind for kind in job_kinds() if set(names) <= _field_names(kind)]


class AtelierCollector:
    def collect(self) -> Iterator[Metric]:
        yield from self._jobs()
        yield from self._queues()
        yield from self._text()
        yield from self._image()

    def _jobs(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily("atelier_jobs", "Jobs by kind and status", labels=["kind", "status"])
        for kind in job_kinds():
            for row in kind.rows().order_by().values("status").annotate(n=Count("pk")):
                jobs.add_metric([kind.metric_label, row["status"]], row["n"])
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
        total = 0
        tokens = seconds = 0.0
        for kind in _kinds_with("completion_tokens"):
            finished = kind.rows().filter(completion_tokens__isnull=False)
            total += finished.aggregate(tokens=Sum("completion_tokens"))["tokens"] or 0
            if "elapsed" in _field_names(kind):
                recent = finished.filter(finished_at__gte=timezone.now() - RECENT, elapsed__gt=0).aggregate(
                    tokens=Sum("completion_tokens"), seconds=Sum("elapsed")
                )
                tokens += recent["tokens"] or 0
                seconds += recent["seconds"] or 0.0
        yield CounterMetricFamily("atelier_tokens", "Tokens decoded by all workers", value=total)
        yield GaugeMetricFamily(
            "atelier_tokens_per_second", "Decode speed of the text jobs that ended in the last 5 minutes",
            value=tokens / seconds if seconds else 0.0,
        )
        counts: dict[str, float] = {}
        for kind in _kinds_with("time_to_first_token"):
            timed = kind.rows().filter(time_to_first_token__isnull=False).aggregate(
                total=Sum("time_to_first_token"), n=Count("pk"),
                **{f"le{i}": Count("pk", filter=Q(time_to_first_token__lte=b)) for i, b in enumerate(TTFT_BUCKETS)},
            )
            for name, value in timed.items():
                counts[name] = counts.get(name, 0) + (value or 0)
        buckets = [(str(b), counts.get(f"le{i}", 0)) for i, b in enumerate(TTFT_BUCKETS)] + [("+Inf", counts.get("n", 0))]
        yield HistogramMetricFamily(
            "atelier_time_to_first_token_seconds", "Time from a text job's start to its first token",
            buckets=buckets, sum_value=counts.get("total", 0.0),
        )

    def _image(self) -> Iterator[Metric]:
        total = 0
        steps = seconds = 0.0
        for kind in _kinds_with("steps_done", "seconds_per_step"):
            rows = kind.rows()
            total += rows.aggregate(steps=Sum("steps_done"))["steps"] or 0
            recent = rows.filter(
                finished_at__gte=timezone.now() - RECENT, seconds_per_step__gt=0, steps_done__gt=0
            ).aggregate(steps=Sum("steps_done"), seconds=Sum(F("seconds_per_step") * F("steps_done")))
            steps += recent["steps"] or 0
            seconds += recent["seconds"] or 0.0
        yield CounterMetricFamily("atelier_image_steps", "Denoising steps done by all workers", value=total)
        yield GaugeMetricFamily(
            "atelier_image_steps_per_second", "Denoising speed of the image jobs that ended in the last 5 minutes",
            value=steps / seconds if seconds else 0.0,
        )


# Collectors of apps above core (usage's per-team counters), registered in their AppConfig.ready.
_COLLECTORS: dict[str, Any] = {}


def metrics_collector_register(name: str, collector: Any) -> None:
    """Add ``collector`` (an object with ``collect()``) to every scrape; idempotent per ``name``."""
    _COLLECTORS[name] = collector


def metrics_text() -> bytes:
    """The exposition text of a fresh registry: nothing lingers between scrapes."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AtelierCollector())  # type: ignore[arg-type]
    for collector in _COLLECTORS.values():
        registry.register(collector)
    return generate_latest(registry)
