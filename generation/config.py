"""Process-wide settings for the engines, read from the environment.

Django's settings export the same variables before any engine is used, so a
Celery worker and ``python -m generation`` see the same folders.
"""
from __future__ import annotations

import os
from functools import cache
from pathlib import Path

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


@cache
def configure_torch_threads() -> int:
    """Set torch's intra-op thread count once per process and return it.

    ``ATELIER_TORCH_THREADS`` overrides; the default is the number of cores
    this process may use, because the engines run one job at a time.
    """
    import torch

    wanted = os.environ.get("ATELIER_TORCH_THREADS")
    threads = int(wanted) if wanted else max(1, len(os.sched_getaffinity(0)))
    torch.set_num_threads(threads)
    return threads
