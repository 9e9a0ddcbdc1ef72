"""The live side of an API text job: the API's shape of the shared text stream (``webapp.core.stream``).

The worker logs the job's events, without channel-layer publishing:
``claimed`` when it takes the job, ``start`` once the engine accepted the
request, ``chunk`` for text, and ``end`` with the finish reason and usage.
Each event names its type ``t``. The request's async view follows the log
(``webapp.core.stream.log_follow``).
"""
from __future__ import annotations

from typing import Any

from webapp.core.stream import TextLog

TEXT_JOB_LOG = TextLog(kind="api.text", type_field="t")


def log_key(job: Any) -> str:
    return TEXT_JOB_LOG.key(job)

