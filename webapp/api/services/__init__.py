"""Writes of the API: keys (``keys``), text jobs (``text``) and image requests (``images``)."""
from __future__ import annotations

from webapp.api.services.images import (
    image_call_create,
    image_call_stop,
    image_edit_call_create,
    image_file_record,
    image_job_assets,
    image_job_expire_unclaimed,
    image_job_state,
)
from webapp.api.services.keys import (
    NewKey,
    key_create,
    key_record_images,
    key_record_request,
    key_record_tokens,
    key_revoke,
    keys_revoke_for_member,
    secret_hash,
)
from webapp.api.services.text import (
    text_call_create,
    text_job_defer_unfair,
    text_job_expire_unclaimed,
    text_job_run,
    text_job_state,
    text_jobs_stop,
)

__all__ = [
    "NewKey",
    "image_call_create",
    "image_call_stop",
    "image_edit_call_create",
    "image_file_record",
    "image_job_assets",
    "image_job_expire_unclaimed",
    "image_job_state",
    "key_create",
    "key_record_images",
    "key_record_request",
    "key_record_tokens",
    "key_revoke",
    "keys_revoke_for_member",
    "secret_hash",
    "text_call_create",
    "text_job_defer_unfair",
    "text_job_expire_unclaimed",
    "text_job_run",
    "text_job_state",
    "text_jobs_stop",
]
