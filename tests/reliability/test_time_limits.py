"""Every task has a time limit, soft (the task can fail its job cleanly) below hard (the process dies)."""
from __future__ import annotations

from webapp.celery import app


def test_every_atelier_task_has_soft_and_hard_time_limits():
    app.loader.import_default_modules()
    tasks = [task for name, task in app.tasks.items() if not name.startswith("celery.")]
    assert tasks
    for task in tasks:
        soft = task.soft_time_limit or app.conf.task_soft_time_limit
        hard = task.time_limit or app.conf.task_time_limit
        assert soft and hard and soft < hard, task.name
