"""The worker launcher (``python -m webapp.worker``): the one place a worker's command line is written."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.helpers import ROOT, wait_for, worker_command
from webapp.core.workers import workers_seen
from webapp.worker import worker_argv, worker_env


def _option(argv: list[str], flag: str) -> str:
    return argv[len(argv) - 1 - argv[::-1].index(flag) + 1]  # the last one wins, as in celery


@pytest.mark.parametrize(("kind", "queues"), [("image", "image"), ("maintenance", "maintenance"),
                                              ("all", "default,text,image,maintenance")])
def test_image_maintenance_and_all_workers_serve_their_queues_one_job_at_a_time(kind, queues):
    argv = worker_argv(kind)
    assert argv[1:6] == ["-m", "celery", "-A", "webapp", "worker"]
    assert (_option(argv, "-Q"), _option(argv, "-c"), _option(argv, "-n")) == (queues, "1", f"{kind}@%h")
    assert "-P" not in argv


def test_a_text_worker_is_a_thread_pool_as_wide_as_the_engine_batch(monkeypatch):
    monkeypatch.setenv("ATELIER_TEXT_BATCH", "5")
    argv = worker_argv("text")
    assert (_option(argv, "-Q"), _option(argv, "-P"), _option(argv, "-c")) == ("text,default", "threads", "5")


def test_options_after_the_kind_come_last_so_they_win():
    argv = worker_argv("text", ["-Q", "dying", "-n", "x@h"])
    assert argv[-4:] == ["-Q", "dying", "-n", "x@h"]
    assert (_option(argv, "-Q"), _option(argv, "-n")) == ("dying", "x@h")


def test_an_unknown_kind_is_refused_with_the_choices():
    with pytest.raises(SystemExit, match="text, image, maintenance, all"):
        worker_argv("gpu")


def test_the_environment_carries_the_kinds_thread_count():
    env = worker_env("image", {"ATELIER_IMAGE_THREADS": "3", "ATELIER_TORCH_THREADS": "9", "KEEP": "me"})
    assert env["ATELIER_TORCH_THREADS"] == "3" and env["KEEP"] == "me"


def test_an_image_worker_skips_the_chat_model_unless_told_otherwise():
    assert worker_env("image", {})["ATELIER_PRELOAD_TEXT_MODEL"] == "0"
    assert worker_env("image", {"ATELIER_PRELOAD_TEXT_MODEL": "1"})["ATELIER_PRELOAD_TEXT_MODEL"] == "1"
    assert "ATELIER_PRELOAD_TEXT_MODEL" not in worker_env("text", {})


def test_a_maintenance_worker_loads_no_model_and_takes_one_thread():
    env = worker_env("maintenance", {"ATELIER_TORCH_THREADS": "9"})
    assert (env["ATELIER_TORCH_THREADS"], env["ATELIER_PRELOAD_TEXT_MODEL"]) == ("1", "0")


def test_a_bad_thread_count_stops_the_launch_and_names_the_variable():
    with pytest.raises(SystemExit, match="ATELIER_TEXT_THREADS"):
        worker_env("text", {"ATELIER_TEXT_THREADS": "many"})


@pytest.mark.stack
@pytest.mark.django_db(transaction=True)
def test_a_launched_worker_is_the_process_itself_and_serves_its_queues(redis_server):
    from webapp.celery import app

    name = f"launcher-{os.getpid()}@test"
    env = {**os.environ, "ATELIER_DATABASE_NAME": str(connection.settings_dict["NAME"]),
           "ATELIER_IMAGE_THREADS": "1", "ATELIER_PRELOAD_TEXT_MODEL": "0"}
    with open(Path(settings.VAR_DIR) / "launcher-worker.log", "w") as log:
        process = subprocess.Popen(worker_command("image", "-n", name), cwd=ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
        try:
            queues = wait_for(lambda: app.control.inspect(destination=[name], timeout=1.0).active_queues(), 120,
                              "the launched worker to answer")
            beating = wait_for(lambda: [w for w in workers_seen() if w.name == name and w.alive], 30,
                               "the launched worker's heartbeat (its HeartbeatStep)")
            environ = Path(f"/proc/{process.pid}/environ").read_bytes().split(b"\0")
            cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")
        finally:
            process.terminate()
            process.wait(timeout=30)
    assert [queue["name"] for queue in queues[name]] == ["image"]
    assert list(beating[0].queues) == ["image"]
    assert b"ATELIER_TORCH_THREADS=1" in environ
    assert b"celery" in cmdline  # exec'd: the pid a caller holds is the worker's own
