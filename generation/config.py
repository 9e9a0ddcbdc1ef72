"""Process-wide settings for the engines, read from the environment.

Django's settings export the same variables before any engine is used, so a
Celery worker and ``python -m generation`` see the same folders.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from generation.errors import GenerationError

REPO_ROOT = Path(__file__).resolve().parent.parent

# Never let any code path reach a model hub: every model is local.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# Spinning OpenMP threads steal the cores that the web server and Redis need.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def var_dir() -> Path:
    """Where all state lives (``ATELIER_VAR_DIR``, default ``<repo>/var``)."""
    return Path(os.environ.get("ATELIER_VAR_DIR", REPO_ROOT / "var")).resolve()


def model_cache_dir() -> Path:
    """Folder for converted weights (``ATELIER_MODEL_CACHE``, default ``var/models``)."""
    path = Path(os.environ.get("ATELIER_MODEL_CACHE", var_dir() / "models")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


@cache
def device() -> str:
    """``cuda`` when a GPU is visible, else ``cpu`` (``ATELIER_DEVICE`` overrides)."""
    forced = os.environ.get("ATELIER_DEVICE")
    if forced:
        return forced
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def available_cores() -> int:
    """The number of cores this process may use."""
    return max(1, len(os.sched_getaffinity(0)))


def default_thread_split(cores: int) -> tuple[int, int]:
    """Threads for ``(text, image)`` workers that share ``cores`` cores.

    The image worker takes half the cores (an odd one goes to it: its steps
    are large convolutions), at normal priority: on the shared 2-core machine an
    image process with 2 threads ran 10-40x slower than with 1 whenever the
    cores were busy (``bench/worker_split.py``), since each step waits for its
    slowest thread. The text engine takes every core, at ``ATELIER_ENGINE_NICE``
    (its OpenVINO child process, or its compute threads): alone it decodes with
    all of them, and beside an image job the scheduler gives the image worker
    its cores first. Measured on 2 cores (``bench/concurrency.py``): one chat
    ~1.2x and 8 chats at once ~1.25x faster at 2 threads than at 1, while a
    4-image job beside chats kept its s/step (1.05x alone, against 1.07x at 1).
    """
    return cores, max(1, cores - cores // 2)


class ConfigError(GenerationError, ValueError):
    """An environment variable that configures the engines has a bad value; the message names it."""


def _threads_from_env(name: str, environ: Mapping[str, str] | None = None) -> int | None:
    raw = (os.environ if environ is None else environ).get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number of threads, not {raw!r}") from None
    if value < 1:
        raise ConfigError(f"{name} must be at least 1, not {value}")
    return value


def engine_nice() -> int:
    """``ATELIER_ENGINE_NICE`` (default 5): how much lower (Linux ``nice``) the text engine's
    compute runs than the Python threads around it; 0 leaves priorities alone."""
    raw = os.environ.get("ATELIER_ENGINE_NICE", "").strip() or "5"
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"ATELIER_ENGINE_NICE must be a whole number from 0 to 19, not {raw!r}") from None
    if not 0 <= value <= 19:
        raise ConfigError(f"ATELIER_ENGINE_NICE must be from 0 to 19, not {value}")
    return value


def worker_threads(kind: str, environ: Mapping[str, str] | None = None) -> int:
    """Torch threads for a worker of ``kind`` (``text``, ``image`` or ``all``).

    ``ATELIER_TEXT_THREADS`` and ``ATELIER_IMAGE_THREADS`` override the split of
    ``default_thread_split``; a worker on every queue (``all``) runs one job at
    a time and takes ``ATELIER_TORCH_THREADS`` or every core. ``environ``
    defaults to this process's environment.
    """
    cores = available_cores()
    text, image = default_thread_split(cores)
    if kind == "text":
        return _threads_from_env("ATELIER_TEXT_THREADS", environ) or text
    if kind == "image":
        return _threads_from_env("ATELIER_IMAGE_THREADS", environ) or image
    if kind == "all":
        return _threads_from_env("ATELIER_TORCH_THREADS", environ) or cores
    raise ConfigError(f"unknown worker kind {kind!r}: choose text, image or all")


@cache
def configure_torch_threads() -> int:
    """Set torch's intra-op thread count once per process and return it.

    ``ATELIER_TORCH_THREADS`` overrides (the worker launcher, ``webapp.worker``,
    sets it from ``worker_threads``); the default is every core this process may use.
    """
    import torch

    threads = _threads_from_env("ATELIER_TORCH_THREADS") or available_cores()
    torch.set_num_threads(threads)
    return threads
