"""The life of a job, one implementation for every kind: chat replies, image jobs, and those to come.

    queued --claim--> running --> done | stopped | failed
       |                 |
       +-- stop, expire -+-- stop flag (watched off the compute thread), heartbeat, stale sweep (beat)

A kind of job is a model whose rows carry the lifecycle columns ``status``
(``JobStatus``), ``reason``, ``worker``, ``started_at``, ``heartbeat_at``,
``finished_at`` and ``created_at``, plus a Celery task, registered once as a
``JobKind`` (in its app's ``AppConfig.ready``). The kind adds only what is
its own: how to run it, how to store its result, and how to tell watchers
that a row changed state. Everything else lives here:

- web side: ``job_enqueue`` (by task name, after commit), ``job_stop``,
  ``job_expire`` (a job no worker took in time);
- worker side: ``job_claim`` (idempotent), ``job_running`` (heartbeat and
  stop watch, one helper thread each), ``job_finish``, ``job_fail`` (and
  ``job_fail_logged``, the generic failure with an error id);
- ``jobs_sweep_stale`` (Celery beat runs ``core.sweep_stale_jobs``; a starting
  worker sweeps its own jobs) and the worker's signal hooks.

One module per concern: ``kinds`` (statuses, ``JobKind``, the registry,
publishing, Redis keys), ``enqueue`` (enqueue, stop), ``ends`` (claim,
finish, fail, expire), ``fair`` (quotas, fair order), ``admission``
(the registry of admission checks the quotas run), ``running``
(heartbeat, stop watch), ``signals`` (``job_finished``, sent at every end),
``sweep``, ``hooks`` (the worker's signals). Import
the names from this package: tests replace ``task_send`` and ``job_publish``
here, and the modules look them up here.

Tasks stay thin: they take the id, call their app's service (which uses the
functions here) and fail the job on an unexpected error. A pool process that
dies never reaches its task's own ``except``: the ``task_failure`` hook (``hooks``)
fails its job from the worker's main process.
"""
from __future__ import annotations

from webapp.core.jobs.admission import Admission, AdmissionCheck, admission_register, admission_run
from webapp.core.jobs.ends import job_claim, job_expire, job_fail, job_fail_logged, job_finish
from webapp.core.jobs.enqueue import job_enqueue, job_stop, job_stop_request, task_send
from webapp.core.jobs.fair import (
    MAX_DEFERRALS,
    QuotaExceeded,
    job_defer_unfair,
    job_fair_order,
    job_fair_positions,
    job_live_count,
    job_owner_turn,
    job_pick,
    job_quota_check,
    job_quota_check_queue,
)
from webapp.core.jobs.hooks import (  # connects the worker's signal hooks
    fail_job_of_a_lost_task,
    publish_without_thread_in_main_process,
    sweep_on_worker_start,
)
from webapp.core.jobs.kinds import (
    END_STATUSES,
    LIVE_STATUSES,
    JobKind,
    JobStatus,
    job_key,
    job_kind_for_task,
    job_kind_get,
    job_kind_register,
    job_kinds,
    job_publish,
    stop_flag_key,
)
from webapp.core.jobs.running import JobRun, heartbeat_seconds, job_running, stale_seconds
from webapp.core.jobs.signals import job_finished, job_finished_send
from webapp.core.jobs.sweep import jobs_sweep_stale

__all__ = [
    "END_STATUSES",
    "LIVE_STATUSES",
    "MAX_DEFERRALS",
    "Admission",
    "AdmissionCheck",
    "JobKind",
    "JobRun",
    "JobStatus",
    "QuotaExceeded",
    "admission_register",
    "admission_run",
    "fail_job_of_a_lost_task",
    "heartbeat_seconds",
    "job_claim",
    "job_defer_unfair",
    "job_enqueue",
    "job_expire",
    "job_fail",
    "job_fail_logged",
    "job_fair_order",
    "job_fair_positions",
    "job_finish",
    "job_finished",
    "job_finished_send",
    "job_key",
    "job_kind_for_task",
    "job_kind_get",
    "job_kind_register",
    "job_kinds",
    "job_live_count",
    "job_owner_turn",
    "job_pick",
    "job_publish",
    "job_quota_check",
    "job_quota_check_queue",
    "job_running",
    "job_stop",
    "job_stop_request",
    "jobs_sweep_stale",
    "publish_without_thread_in_main_process",
    "stale_seconds",
    "stop_flag_key",
    "sweep_on_worker_start",
    "task_send",
]
