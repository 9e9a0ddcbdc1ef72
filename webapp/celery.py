"""The Celery app. Workers run ``celery -A webapp worker -Q text,image,default``."""
from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

app = Celery("atelier")
app.config_from_object("django.conf:settings", namespace="CELERY")
# GPU workers in production listen on one of these; the embedded worker on all.
app.conf.task_queues = (Queue("default"), Queue("text"), Queue("image"))
app.autodiscover_tasks()
