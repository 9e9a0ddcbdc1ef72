"""Worker entry points for chat. Workers load the default text model when their
process starts. Claiming, the heartbeat, the stop watch, the sweep and the hooks
for lost or restarted workers are the job lifecycle's (``webapp.core.jobs``)."""
from __future__ import annotations

import logging
import os
from typing import Any

from celery import shared_task
from celery.signals import worker_init, worker_process_init

from webapp.chat import services
from webapp.core.jobs import job_fail_logged

logger = logging.getLogger(__name__)


@shared_task(name="chat.generate_reply", bind=True, acks_late=True)
def generate_reply(self: Any, message_id: int, deferred: int = 0) -> str:
    """Decode one reply (unless it is not its author's turn on the text queue: then it waits its
    turn at the back). Anything that escapes ``reply_run`` marks the reply failed."""
    if services.reply_defer_unfair(message_id=message_id, deferred=deferred):
        return "deferred"
    try:
        message = services.reply_run(message_id=message_id, worker=self.request.hostname or "")
    except Exception:
        job_fail_logged(kind=services.REPLY, job_id=message_id, what="The reply")
        raise
    return message.status if message is not None else "skipped"


@worker_process_init.connect
def load_default_text_model(**kwargs: object) -> None:
    """Load and warm the default chat model's engine in each pool process, so no prompt pays for it.

    ``ATELIER_PRELOAD_TEXT_MODEL=0`` turns this off (e.g. for image-only workers).
    """
    if os.environ.get("ATELIER_PRELOAD_TEXT_MODEL", "1") in ("0", "false", "no"):
        return
    try:
        from generation.text.engine import text_engine
        from generation.text.types import DEFAULT_TEXT_MODEL

        text_engine(DEFAULT_TEXT_MODEL)
    except Exception:
        logger.exception("could not preload the default text model; the first reply will load it")


@worker_init.connect
def load_default_text_model_in_a_thread_pool(sender: Any = None, **kwargs: object) -> None:
    """A text worker runs a thread pool (``-P threads -c $ATELIER_TEXT_BATCH``): its tasks share
    this process's one engine, which decodes their replies in one batch. No pool process starts
    there, so the model is loaded here; a prefork pool loads it in each child instead."""
    pool = str(getattr(sender, "pool_cls", "") or "")
    if "thread" in pool or "solo" in pool:
        load_default_text_model()
