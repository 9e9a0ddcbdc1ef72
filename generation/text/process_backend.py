"""The OpenVINO backend in a child process, so that a decode step never holds this process's GIL.

``ContinuousBatchingPipeline.step()`` keeps the GIL for the whole step
(measured: a Python thread that sleeps 2 ms woke 20 ms late, one step, while
8 rows decoded beside it). In a text worker every other thread (claiming
replies, building prompts, publishing chunks, the heartbeat) then waits a
step for each GIL hand-over, and a claim that hands it over tens of times
waits a second. Here the pipeline lives in a child process; the engine's
scheduler thread sends each step's joining requests down a pipe and waits
for the progress with the GIL released.

``ATELIER_TEXT_ENGINE_PROCESS=0`` keeps the pipeline in this process. The
child is a fresh interpreter (``python -m generation.text.process_backend``,
never a fork of a threaded process, and not a ``multiprocessing`` child,
which a Celery prefork pool process may not have); it ends when its parent
does (its end of the socket pair closes), and is started again after it
dies: the step in flight fails its requests, as any failed step does, and
the next step runs in a new child.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from generation.config import REPO_ROOT, engine_nice
from generation.errors import GenerationError
from generation.text.batching import Progress, Request
from generation.text.openvino_backend import OpenVINOPipelineSpec
from generation.text.types import DecodingParams

PROCESS_ENV_VAR = "ATELIER_TEXT_ENGINE_PROCESS"


def engine_in_child() -> bool:
    """``ATELIER_TEXT_ENGINE_PROCESS`` (default on): run OpenVINO pipelines in a child process."""
    raw = os.environ.get(PROCESS_ENV_VAR, "").strip().lower() or "1"
    if raw not in ("0", "1", "true", "false", "yes", "no"):
        raise GenerationError(f"{PROCESS_ENV_VAR} must be 1 or 0, got {raw!r}")
    return raw in ("1", "true", "yes")


@dataclass(frozen=True)
class _Joining:
    """What the child needs of a joining request."""

    id: int
    prompt_ids: list[int]
    params: DecodingParams


class ProcessBackend:
    """An ``OpenVINOBackend`` in a child process, with the same three calls."""

    name = "openvino"

    def __init__(self, spec: OpenVINOPipelineSpec, eos: frozenset[int]) -> None:
        self.spec = spec
        self.eos = eos
        self._conn: Connection | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._pid = 0
        self._start()

    @property
    def child_pid(self) -> int | None:
        """The child's process id (None before it started)."""
        return self._process.pid if self._process is not None else None

    def step(self, joining: Sequence[Request]) -> dict[int, Progress]:
        result: dict[int, Progress] = self._call(
            "step", [_Joining(job.id, list(job.prompt_ids), job.params) for job in joining]
        )
        return result

    def remove(self, job_id: int) -> None:
        self._call("remove", job_id)

    def reset(self) -> None:
        """Forget every request; a child that died is replaced by a new one."""
        if self._alive():
            try:
                self._call("reset")
                return
            except GenerationError:  # dying: its exit status was not there yet
                pass
        self._start()

    def close(self) -> None:
        """End the child (the engine closes; also run when this object is collected)."""
        self._finalizer()

    # --- this side of the pipe ------------------------------------------------

    def _alive(self) -> bool:
        return self._process is not None and self._pid == os.getpid() and self._process.poll() is None

    def _start(self) -> None:
        previous = getattr(self, "_finalizer", None)
        if previous is not None:
            # A dead child is reaped; a fork's copy leaves its parent's child alone.
            if self._pid == os.getpid():
                previous()
            else:
                previous.detach()
        ours, theirs = socket.socketpair()
        path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
        process = subprocess.Popen(
            [sys.executable, "-m", "generation.text.process_backend", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            env={**os.environ, "PYTHONPATH": path},
        )
        theirs.close()
        conn = Connection(ours.detach())
        self._conn, self._process, self._pid = conn, process, os.getpid()
        self._finalizer = weakref.finalize(self, _stop, conn, process)
        self._call("ready", (self.spec, self.eos))

    def _call(self, op: str, arg: Any = None) -> Any:
        if self._pid != os.getpid():  # a fork's copy: its pipe is the parent's
            self._start()
        assert self._conn is not None
        try:
            self._conn.send((op, arg))
            # Wait with an eye on the child: its end of the pipe may outlive it elsewhere.
            while not self._conn.poll(1.0):
                if self._process is None or self._process.poll() is not None:
                    raise EOFError
            ok, value = self._conn.recv()
        except (EOFError, OSError) as exc:
            code = self._process.poll() if self._process is not None else None
            raise GenerationError(f"the text engine's process ended (exit code {code})") from exc
        if not ok:
            raise GenerationError(value)
        return value


def _stop(conn: Connection, process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError, ValueError):
        conn.send(("close", None))
    conn.close()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


# --- the child ------------------------------------------------------------------


def _serve(conn: Connection) -> None:
    """The child's loop: build the pipeline on ``ready``, then answer calls until the parent closes the pipe."""
    from generation.text.openvino_backend import OpenVINOBackend, build_pipeline

    backend: OpenVINOBackend | None = None
    while True:
        try:
            op, arg = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        if op == "close":
            return
        try:
            if op == "ready":
                nice = engine_nice()
                if nice > 0:
                    os.nice(nice)  # everything here is compute: the parent's threads go first
                spec, eos = arg
                backend = OpenVINOBackend(build_pipeline(spec), eos)
                value: Any = None
            elif backend is None:
                raise GenerationError("the text engine's child was not started")
            elif op == "step":
                value = backend.step(arg)
            elif op == "remove":
                backend.remove(arg)
                value = None
            elif op == "reset":
                backend.reset()
                value = None
            else:
                raise GenerationError(f"unknown call {op!r}")
            reply: tuple[bool, Any] = (True, value)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            reply = (False, f"could not build the text engine: {reason}" if op == "ready" else reason)
        if not _reply(conn, reply):
            return


def _reply(conn: Connection, reply: tuple[bool, Any]) -> bool:
    try:
        conn.send(reply)
    except (OSError, ValueError):
        return False
    return True


if __name__ == "__main__":
    _serve(Connection(int(sys.argv[1])))
