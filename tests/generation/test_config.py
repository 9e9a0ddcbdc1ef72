"""Thread counts for text and image workers that share a machine."""
from __future__ import annotations

import pytest

from generation import config
from generation.config import ConfigError, default_thread_split, worker_threads


@pytest.mark.parametrize("cores", [1, 2, 3, 4, 8, 16, 64])
def test_the_default_split_gives_text_every_core_and_image_half(cores):
    """The text engine runs below normal priority (ATELIER_ENGINE_NICE), so it may take every core;
    the image worker, at normal priority, takes half (the odd one) and never more."""
    text, image = default_thread_split(cores)
    assert text == cores
    assert image == max(1, cores - cores // 2)
    assert image <= max(1, (cores + 1) // 2)


def test_on_two_cores_text_takes_both_and_image_one():
    assert default_thread_split(2) == (2, 1)


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


def test_the_engine_nice_defaults_to_5_and_a_bad_value_names_the_variable(monkeypatch):
    from generation.config import engine_nice

    monkeypatch.delenv("ATELIER_ENGINE_NICE", raising=False)
    assert engine_nice() == 5
    monkeypatch.setenv("ATELIER_ENGINE_NICE", "0")
    assert engine_nice() == 0
    for value in ("high", "-3", "20"):
        monkeypatch.setenv("ATELIER_ENGINE_NICE", value)
        with pytest.raises(ConfigError, match="ATELIER_ENGINE_NICE"):
            engine_nice()
