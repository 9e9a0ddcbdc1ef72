"""Worker entry points for chat. Workers load the default text model when their
process starts, and fail the replies that a dead predecessor left streaming."""
from __future__ import annotations

import logging
import os

from celery import shared_task
from celery.signals import task_failure, worker_process_init, worker_ready

from webapp.chat import services
from webapp.core.errors import error_logged, public_failure

logger = logging.getLogger(__name__)


@shared_task(name="chat.generate_reply", bind=True, acks_late=True)
def generate_reply(self, message_id: int) -> str:
    """Decode one reply. Anything that escapes ``reply_run`` marks the reply failed."""
    try:
        message = services.reply_run(message_id=message_id, worker=self.request.hostname or "")
    except Exception:
        error_id = error_logged(logger, "reply %s failed", message_id)
        services.reply_fail(message_id=message_id, reason=public_failure("The reply", error_id))
        raise
    return message.status if message is not None else "skipped"


@worker_process_init.connect
def load_default_text_model(**kwargs: object) -> None:
    """Load the default chat model in each pool process, so no prompt pays for it.

    ``ATELIER_PRELOAD_TEXT_MODEL=0`` turns this off (e.g. for image-only workers).
    """
    if os.environ.get("ATELIER_PRELOAD_TEXT_MODEL", "1") in ("0", "false", "no"):
        return
    try:
        from generation.text.loading import load_text_model
        from generation.text.types import DEFAULT_TEXT_MODEL

        load_text_model(DEFAULT_TEXT_MODEL)
    except Exception:
        logger.exception("could not preload the default text model; the first reply will load it")


@worker_ready.connect
def fail_orphaned_replies(sender: object = None, **kwargs: object) -> None:
    """A starting worker fails the replies left streaming by a dead one (its old self, or any stale)."""
    from django.db import connection

    try:
        count = services.replies_fail_stale(worker=getattr(sender, "hostname", "") or "")
        if count:
            logger.warning("marked %d orphaned chat replies as failed", count)
    finally:
        connection.close()


@task_failure.connect(sender=generate_reply)
def fail_reply_of_a_lost_task(sender: object = None, args: tuple = (), exception: object = None, **kwargs: object) -> None:
    """A pool process that dies mid-reply (killed, out of memory) never reaches the task's own
    handler; the worker's main process reports the loss here."""
    if args:
        error_id = error_logged(logger, "the worker process was lost during reply %s: %s", args[0], exception, exc_info=False)
        services.reply_fail(
            message_id=int(args[0]), reason=f"The worker process was lost while writing this reply (error id {error_id})."
        )
