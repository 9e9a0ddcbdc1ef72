"""The stack a benchmark starts for itself: embedded Redis, daphne and Celery
workers (started by ``webapp.worker``, as ``make run`` does) on free ports, with a temporary SQLite database. Shared by the chat and
studio benchmarks."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Stack:
    """Redis, daphne and one worker of each kind in ``workers`` (``text``, ``image``, ``all``),
    on free ports, in a temporary folder; stopped on exit. ``worker_env`` adds variables
    to the workers' environment (thread counts, say)."""

    def __init__(self, folder: Path, *, workers: tuple[str, ...], worker_env: dict[str, str] | None = None) -> None:
        from webapp.core.embedded_redis import free_port

        self.folder = folder
        self.workers = workers
        self.worker_env = worker_env or {}
        self.redis_port = free_port()
        self.http_port = free_port()
        self.env = dict(os.environ)
        self.env.update(
            ATELIER_VAR_DIR=str(folder / "var"),
            ATELIER_MODEL_CACHE=os.environ.get("ATELIER_MODEL_CACHE", str(ROOT / "var" / "models")),
            ATELIER_SQLITE_PATH=str(folder / "bench.sqlite3"),
            REDIS_URL=f"redis://127.0.0.1:{self.redis_port}/0",
            DJANGO_SETTINGS_MODULE="webapp.settings",
            PYTHONUNBUFFERED="1",
            # The trusted origins (forms and websockets) derive from where daphne listens.
            ATELIER_HOST="127.0.0.1",
            ATELIER_PORT=str(self.http_port),
        )
        self.env.pop("DATABASE_URL", None)
        self.env.pop("CSRF_TRUSTED_ORIGINS", None)
        self.processes: list[subprocess.Popen] = []
        self.base_url = f"http://127.0.0.1:{self.http_port}"

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        out = open(self.folder / f"{name}.log", "w")  # noqa: SIM115 - lives as long as the process
        process = subprocess.Popen(args, cwd=ROOT, env=env or self.env, stdout=out, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def start(self) -> None:
        from webapp.core import embedded_redis

        self.processes.append(
            embedded_redis.start(port=self.redis_port, data_dir=self.folder / "redis", persist=False)
        )
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=self.env, check=True)
        self._spawn("daphne", [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.http_port),
                               "webapp.asgi:application"])
        workers = {
            kind: self._spawn(f"{kind}-worker", [sys.executable, "-m", "webapp.worker", kind, "-n", f"bench-{kind}@%h"],
                              env={**self.env, **self.worker_env})
            for kind in self.workers
        }
        self._wait(lambda: self._http_ok("/healthz"), "daphne")
        for kind, worker in workers.items():
            log_path = self.folder / f"{kind}-worker.log"
            self._wait(lambda path=log_path, process=worker: "ready." in path.read_text() or process.poll() is not None,
                       f"the {kind} worker")
            if worker.poll() is not None:
                raise RuntimeError(f"the {kind} worker exited; see {log_path}")

    def _http_ok(self, path: str) -> bool:
        import requests

        try:
            return requests.get(self.base_url + path, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    @staticmethod
    def _wait(check: Any, what: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not come up")
            time.sleep(0.2)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def run_stack_bench(
    args: argparse.Namespace,
    *,
    name: str,
    workers: tuple[str, ...],
    bench: Callable[[Stack, argparse.Namespace], Awaitable[dict]],
    worker_env: dict[str, str] | None = None,
) -> int:
    """Start a stack in a temporary folder, run ``bench`` on it, print its result as one JSON line."""
    folder = Path(tempfile.mkdtemp(prefix=f"atelier-bench-{name}-"))
    os.environ.setdefault("ATELIER_MODEL_CACHE", str(ROOT / "var" / "models"))
    stack = Stack(folder, workers=workers, worker_env=worker_env)
    try:
        log(f"starting the stack in {folder}")
        stack.start()
        result = asyncio.run(bench(stack, args))
    finally:
        stack.stop()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(result))
    return 0
