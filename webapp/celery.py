"""The Celery app. Workers start with ``python -m webapp.worker text|image|all`` (see ``webapp/worker.py``)."""
from __future__ import annotations

import os

from celery import Celery
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

app = Celery("atelier")
app.config_from_object("django.conf:settings", namespace="CELERY")
# GPU workers in production listen on one of these; the embedded worker on all.
# Each queue has its own exchange and routing key: sharing the default key would
# copy every message into every queue bound to it.
app.conf.task_queues = tuple(
    Queue(name, Exchange(name), routing_key=name) for name in ("default", "text", "image", "maintenance")
)
app.conf.task_default_exchange = "default"
app.conf.task_default_routing_key = "default"
app.autodiscover_tasks()
# Every worker writes its heartbeat (webapp/core/workers.py). The step is named, not
# imported: Celery resolves it when the worker starts, and webapp.core, which sends
# tasks through this app, stays free of an import cycle with it.
app.steps["worker"].add("webapp.core.workers:HeartbeatStep")
