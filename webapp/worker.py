"""How a Celery worker starts: the one place that writes its command line.

    python -m webapp.worker text|image|maintenance|all [more celery worker options]

``text`` serves the ``text`` and ``default`` queues, ``image`` the ``image``
queue, ``maintenance`` only the beat's own tasks (the stale-job sweep, export
expiry: a queue no user work fills, served by a small process that loads no
model), ``all`` every queue (the test suite, or a machine that wants one
process). A text worker is a pool of ``ATELIER_TEXT_BATCH`` threads whose replies
one engine decodes in batches; the others run one job at a time (``-c 1``). Each
gets the thread count of ``generation.config.worker_threads``: the text engine
every core below normal priority, the image worker half at normal priority, so
an image job beside chats keeps its cores. Options given after the kind come after
ours, so a ``-Q``, ``-n`` or ``-c`` there wins. The Procfile, the tests and the
benchmarks all start their workers here.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

QUEUES: dict[str, tuple[str, ...]] = {
    "text": ("text", "default"),
    "image": ("image",),
    "maintenance": ("maintenance",),
    "all": ("default", "text", "image", "maintenance"),
}


def worker_argv(kind: str, extra: Sequence[str] = ()) -> list[str]:
    """The command line of a worker of ``kind``, ``extra`` options last."""
    from generation.text.batching import text_batch_size

    if kind not in QUEUES:
        raise SystemExit(f"unknown worker kind {kind!r}: choose one of {', '.join(QUEUES)}")
    # A text worker's threads share the process's one engine, which batches their
    # replies (generation.text.batching); the other kinds run one job at a time.
    pool = ["-P", "threads", "-c", str(text_batch_size())] if kind == "text" else ["-c", "1"]
    return [
        sys.executable, "-m", "celery", "-A", "webapp", "worker",
        "-Q", ",".join(QUEUES[kind]), *pool, "-n", f"{kind}@%h",
        "--without-gossip", "--without-mingle", "-l", "INFO",
        *extra,
    ]


def worker_env(kind: str, environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` with ``ATELIER_TORCH_THREADS`` set for a worker of ``kind``.

    An ``image`` worker never runs a chat reply, so it doesn't load the chat
    model at start unless ``ATELIER_PRELOAD_TEXT_MODEL`` says otherwise.
    """
    from generation.config import ConfigError, worker_threads

    env = dict(environ)
    if kind == "maintenance":  # sweeps and clean-ups: no model, no engine
        env["ATELIER_TORCH_THREADS"] = "1"
        env.setdefault("ATELIER_PRELOAD_TEXT_MODEL", "0")
        return env
    try:
        env["ATELIER_TORCH_THREADS"] = str(worker_threads(kind, environ))
    except ConfigError as error:
        raise SystemExit(str(error)) from None
    if kind == "image":
        env.setdefault("ATELIER_PRELOAD_TEXT_MODEL", "0")
    return env


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        raise SystemExit(__doc__)
    kind, extra = args[0], args[1:]
    command = worker_argv(kind, extra)
    env = worker_env(kind, os.environ)
    # exec, not a child: the caller's process (honcho, a test) is the worker itself.
    os.execve(command[0], command, env)


if __name__ == "__main__":
    main()
