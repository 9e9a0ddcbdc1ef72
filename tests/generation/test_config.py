"""Thread counts for text and image workers that share a machine."""
from __future__ import annotations

import pytest

from generation import config
from generation.config import ConfigError, default_thread_split, worker_threads


@pytest.mark.parametrize("cores", [1, 2, 3, 4, 8, 16, 64])
def test_the_default_split_gives_each_worker_a_thread_and_never_oversubscribes(cores):
    text, image = default_thread_split(cores)
    assert text >= 1 and image >= 1
    assert text + image == max(2, cores)


def test_on_two_cores_each_worker_gets_one_thread():
    assert default_thread_split(2) == (1, 1)


@pytest.mark.parametrize(("kind", "variable"), [("text", "ATELIER_TEXT_THREADS"), ("image", "ATELIER_IMAGE_THREADS"),
                                                 ("all", "ATELIER_TORCH_THREADS")])
def test_each_kind_reads_its_own_variable(monkeypatch, kind, variable):
    for name in ("ATELIER_TEXT_THREADS", "ATELIER_IMAGE_THREADS", "ATELIER_TORCH_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, "5")
    assert worker_threads(kind) == 5


def test_without_variables_the_split_follows_the_cores(monkeypatch):
    for name in ("ATELIER_TEXT_THREADS", "ATELIER_IMAGE_THREADS", "ATELIER_TORCH_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(config, "available_cores", lambda: 8)
    assert (worker_threads("text"), worker_threads("image"), worker_threads("all")) == (*default_thread_split(8), 8)


@pytest.mark.parametrize("value", ["two", "0", "-1", "1.5"])
def test_a_bad_thread_count_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("ATELIER_IMAGE_THREADS", value)
    with pytest.raises(ConfigError, match="ATELIER_IMAGE_THREADS"):
        worker_threads("image")


def test_an_unknown_kind_is_refused():
    with pytest.raises(ConfigError, match="gpu"):
        worker_threads("gpu")
