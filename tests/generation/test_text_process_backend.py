"""The OpenVINO pipeline in a child process (``generation.text.process_backend``), with the real default model."""
from __future__ import annotations

import os
import signal
import threading

import pytest

from generation.errors import GenerationError
from generation.text import (
    DEFAULT_TEXT_MODEL,
    ChatMessage,
    DecodingParams,
    TextFinal,
    TextRequest,
    clear_text_model_cache,
    load_text_model,
    prepare_openvino_text_model,
)
from generation.text.engine import build_engine, encode_prompt
from generation.text.openvino_backend import OpenVINOPipelineSpec
from generation.text.process_backend import ProcessBackend, engine_in_child

pytest.importorskip("openvino_genai")

pytestmark = pytest.mark.model


def _load(monkeypatch, in_child: str):
    monkeypatch.setenv("ATELIER_TEXT_BACKEND", "openvino")
    monkeypatch.setenv("ATELIER_OPENVINO_PRECISION", "exact")
    monkeypatch.setenv("ATELIER_TEXT_ENGINE_PROCESS", in_child)
    clear_text_model_cache()
    assert prepare_openvino_text_model() is not None
    try:
        return load_text_model(DEFAULT_TEXT_MODEL)
    finally:
        clear_text_model_cache()


@pytest.fixture
def engines():
    built = []
    yield built
    for engine in built:
        engine.close()


def _ids(loaded, prompt: str) -> list[int]:
    return encode_prompt(loaded, TextRequest(messages=(ChatMessage("user", prompt),)))


def _final(stream) -> TextFinal:
    *_, final = list(stream)
    return final


def test_the_pipeline_runs_in_a_child_and_decodes_what_it_decodes_in_this_process(monkeypatch, engines):
    in_child = _load(monkeypatch, "1")
    here = _load(monkeypatch, "0")
    assert isinstance(in_child.model, OpenVINOPipelineSpec)  # this process never builds the pipeline
    assert not isinstance(here.model, OpenVINOPipelineSpec)
    engines += [build_engine(in_child), build_engine(here)]
    child_engine, here_engine = engines

    assert isinstance(child_engine.backend, ProcessBackend)
    assert child_engine.backend.child_pid not in (None, os.getpid())
    params = DecodingParams(max_new_tokens=24)
    for prompt in ("What is the capital of France?", "Name three colors."):
        child_final = _final(child_engine.submit(_ids(in_child, prompt), params))
        here_final = _final(here_engine.submit(_ids(here, prompt), params))
        assert child_final.text == here_final.text
        assert child_final.completion_tokens == here_final.completion_tokens
        assert child_final.backend == "openvino"


def test_a_step_in_the_child_leaves_this_process_free_to_run_python(monkeypatch, engines):
    """In this process a step holds the GIL from start to end; in a child, other threads run meanwhile."""
    loaded = _load(monkeypatch, "1")
    engines.append(build_engine(loaded))
    backend = engines[0].backend
    counter, done = [0], threading.Event()

    def count() -> None:
        while not done.is_set():
            counter[0] += 1

    class Joining:
        def __init__(self, job_id: int) -> None:
            self.id, self.params = job_id, DecodingParams(max_new_tokens=64)
            self.prompt_ids = _ids(loaded, f"Write a long story about dragon number {job_id}.")

    thread = threading.Thread(target=count)
    thread.start()
    try:
        advanced = []
        joining = [Joining(i) for i in range(1, 9)]
        for _ in range(6):
            before = counter[0]
            backend.step(joining)
            advanced.append(counter[0] - before)
            joining = []
    finally:
        done.set()
        thread.join()
        backend.reset()
    assert all(steps > 0 for steps in advanced), advanced


def test_a_child_that_dies_fails_its_requests_and_the_next_one_runs_in_a_new_child(monkeypatch, engines):
    loaded = _load(monkeypatch, "1")
    engines.append(build_engine(loaded))
    engine = engines[0]
    first_child = engine.backend.child_pid
    stream = engine.submit(_ids(loaded, "Write a long story about a dragon."), DecodingParams(max_new_tokens=400))
    next(stream)  # decoding has begun
    os.kill(first_child, signal.SIGKILL)

    final = _final(stream)
    assert final.finish_reason == "error"
    assert "process ended" in (final.error or "")

    again = _final(engine.submit(_ids(loaded, "What is the capital of France?"), DecodingParams(max_new_tokens=12)))
    assert again.finish_reason != "error", again.error
    assert "Paris" in again.text
    assert engine.backend.child_pid not in (None, first_child)


def test_closing_the_engine_ends_its_child(monkeypatch):
    loaded = _load(monkeypatch, "1")
    engine = build_engine(loaded)
    _final(engine.submit(_ids(loaded, "Name three colors."), DecodingParams(max_new_tokens=4)))
    child = engine.backend.child_pid
    engine.close()

    with pytest.raises(ProcessLookupError):  # ended and reaped
        os.kill(child, 0)
    with pytest.raises(GenerationError, match="closed"):
        engine.submit([1, 2, 3], DecodingParams(max_new_tokens=4))


def test_the_setting_takes_1_or_0_and_names_itself_otherwise(monkeypatch):
    monkeypatch.delenv("ATELIER_TEXT_ENGINE_PROCESS", raising=False)
    assert engine_in_child()
    monkeypatch.setenv("ATELIER_TEXT_ENGINE_PROCESS", "0")
    assert not engine_in_child()
    monkeypatch.setenv("ATELIER_TEXT_ENGINE_PROCESS", "maybe")
    with pytest.raises(GenerationError, match="ATELIER_TEXT_ENGINE_PROCESS"):
        engine_in_child()
