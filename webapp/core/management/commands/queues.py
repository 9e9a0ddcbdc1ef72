"""``manage.py queues``: the queue depths and the workers seen, for an operator's terminal."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone


class Command(BaseCommand):
    help = "Print how many messages wait in each queue and which workers are alive (by heartbeat)."

    def handle(self, *args: Any, **options: Any) -> None:
        from webapp.core.health import queue_depths
        from webapp.core.workers import workers_by_queue, workers_seen

        depths = queue_depths()
        by_queue = workers_by_queue(workers_seen())
        now = timezone.now()
        self.stdout.write(f"{'queue':<10} {'waiting':>8} {'workers alive':>14}")
        for queue in sorted(set(depths) | set(by_queue)):
            depth = depths.get(queue)
            alive = sum(1 for w in by_queue.get(queue, []) if w.alive)
            self.stdout.write(f"{queue:<10} {'?' if depth is None else depth:>8} {alive:>14}")
        workers = sorted({w.name: w for ws in by_queue.values() for w in ws}.values(), key=lambda w: w.name)
        self.stdout.write("")
        if not workers:
            self.stdout.write("No worker has sent a heartbeat.")
        for worker in workers:
            ago = (now - worker.last_heartbeat).total_seconds()
            state = "alive" if worker.alive else "SILENT"
            self.stdout.write(
                f"{worker.name:<40} {state:<7} queues={','.join(worker.queues)} host={worker.host} "
                f"last heartbeat {ago:.0f}s ago"
            )
