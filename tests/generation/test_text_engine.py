"""The engine on a tiny random model built in code (milliseconds per request)."""
from __future__ import annotations

import pytest
import torch

from generation.errors import ValidationError
from generation.text import (
    ChatMessage,
    DecodingParams,
    TextFinal,
    TextRequest,
    TokenDelta,
    generate_text,
    load_text_model,
)
from generation.text.engine import encode_prompt
from generation.text.testing import build_tiny_chat_model, tiny_model_entry

TINY = "tiny-engine"


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return build_tiny_chat_model(tmp_path_factory.mktemp("tiny-engine"), seed=0, context_length=128)


@pytest.fixture(autouse=True)
def tiny_model(monkeypatch, tiny_folder):
    monkeypatch.setenv("ATELIER_TEXT_MODELS", tiny_model_entry(TINY, tiny_folder, context_length=128))
    # float32 so that ties between logits, which bf16 makes likely in a tiny model, cannot differ by path.
    monkeypatch.setenv("ATELIER_TEXT_DTYPE", "float32")
    return load_text_model(TINY)


def request(prompt="hello there", **params):
    return TextRequest(messages=(ChatMessage("user", prompt),), model=TINY, params=DecodingParams(**params))


def run(req, **kwargs):
    items = list(generate_text(req, **kwargs))
    deltas, final = items[:-1], items[-1]
    assert all(isinstance(d, TokenDelta) for d in deltas)
    assert isinstance(final, TextFinal)
    assert "".join(d.text for d in deltas) == final.text
    assert [d.index for d in deltas] == list(range(len(deltas)))
    return deltas, final


def test_greedy_is_deterministic():
    _, first = run(request(max_new_tokens=30))
    _, second = run(request(max_new_tokens=30))

    assert first.text == second.text
    assert first.text


def test_sampling_with_top_k_1_equals_greedy():
    _, greedy = run(request(max_new_tokens=30))
    _, sampled = run(request(strategy="sample", top_k=1, temperature=1.5, max_new_tokens=30, seed=5))

    assert sampled.text == greedy.text


def test_same_seed_gives_the_same_text():
    _, first = run(request(strategy="sample", temperature=1.0, max_new_tokens=30, seed=1234))
    _, second = run(request(strategy="sample", temperature=1.0, max_new_tokens=30, seed=1234))
    _, other = run(request(strategy="sample", temperature=1.0, max_new_tokens=30, seed=99))

    assert first.text == second.text
    assert other.text != first.text


def test_sampling_without_a_seed_reports_the_seed_it_drew():
    _, final = run(request(strategy="sample", temperature=1.0, max_new_tokens=20))
    _, replay = run(request(strategy="sample", temperature=1.0, max_new_tokens=20, seed=final.params.seed))

    assert final.params.seed is not None
    assert replay.text == final.text


def test_max_new_tokens_is_exact():
    _, final = run(request(max_new_tokens=17))

    assert (final.completion_tokens, final.finish_reason) == (17, "length")


def test_stop_sequence_is_not_emitted():
    _, plain = run(request(max_new_tokens=40))
    stop = plain.text[6:9]
    cut = plain.text.find(stop)

    deltas, final = run(request(max_new_tokens=40, stop=(stop,)))

    assert final.finish_reason == "stop"
    assert final.text == plain.text[:cut]
    assert stop not in "".join(d.text for d in deltas)


def test_cancel_takes_effect_within_one_token(tiny_model):
    forwards = []
    hook = tiny_model.model.register_forward_hook(lambda *args: forwards.append(1))
    polls = []

    def should_stop():
        polls.append(1)
        return len(polls) > 5

    try:
        _, final = run(request(max_new_tokens=50), should_stop=should_stop)
    finally:
        hook.remove()

    assert final.finish_reason == "cancelled"
    assert final.completion_tokens == 5
    assert len(forwards) == 5


def test_an_engine_failure_mid_stream_becomes_an_error_record(tiny_model):
    calls = []

    def explode(*args):
        calls.append(1)
        if len(calls) > 8:
            raise RuntimeError("out of memory")

    hook = tiny_model.model.register_forward_hook(explode)
    try:
        _, final = run(request(max_new_tokens=50))
    finally:
        hook.remove()

    assert final.finish_reason == "error"
    assert final.error == "RuntimeError: out of memory"
    assert final.completion_tokens == 8


def test_the_final_record_has_the_figures():
    deltas, final = run(request(max_new_tokens=10))

    assert final.prompt_tokens == len(encode_prompt(load_text_model(TINY), request()))
    assert final.model == TINY
    assert 0 < final.time_to_first_token <= final.elapsed
    assert final.tokens_per_second > 0
    assert all(0 < d.elapsed <= final.elapsed for d in deltas)


def test_system_prompt_is_part_of_the_prompt():
    plain = request(max_new_tokens=5)
    with_system = TextRequest(messages=plain.messages, model=TINY, system="be brief", params=plain.params)

    _, final = run(with_system)

    # <|im_start|> "system\nbe brief" <|im_end|> "\n": one token per character, one per special token.
    assert final.prompt_tokens == run(plain)[1].prompt_tokens + 1 + len("system\nbe brief") + 1 + 1


def test_beam_search_matches_transformers_generate(tiny_model):
    req = request(strategy="beam", num_beams=3, max_new_tokens=12)
    prompt = encode_prompt(tiny_model, req)

    deltas, final = run(req)
    assert len(deltas) > 1  # progress streamed before the search ends
    with torch.inference_mode():
        out = tiny_model.model.generate(
            torch.tensor([prompt]), num_beams=3, do_sample=False, max_new_tokens=12, length_penalty=1.0
        )
    expected = tiny_model.tokenizer.decode(out[0, len(prompt) :], skip_special_tokens=True)

    assert final.text == expected
    assert final.finish_reason in ("stop", "length")


def test_beam_search_never_emits_a_stop_sequence():
    # A beam that reaches a stop sequence ends there and competes with the
    # others on its score, so the winner may be another beam that avoided it.
    _, plain = run(request(strategy="beam", num_beams=2, max_new_tokens=30))
    stop = plain.text[4:6]

    _, final = run(request(strategy="beam", num_beams=2, max_new_tokens=30, stop=(stop,)))

    assert stop not in final.text
    assert final.text != plain.text


def test_beam_search_can_be_cancelled():
    polls = []

    def should_stop():
        polls.append(1)
        return len(polls) > 3

    _, final = run(request(strategy="beam", num_beams=4, max_new_tokens=40), should_stop=should_stop)

    assert final.finish_reason == "cancelled"
    assert final.completion_tokens == 3


def test_prompt_longer_than_the_context_is_rejected_before_streaming():
    with pytest.raises(ValidationError) as caught:
        generate_text(request(prompt="a" * 200, max_new_tokens=1))

    assert caught.value.field == "messages"


def test_max_new_tokens_beyond_the_room_left_by_the_prompt_is_rejected():
    with pytest.raises(ValidationError) as caught:
        generate_text(request(prompt="a" * 60, max_new_tokens=100))

    assert caught.value.field == "max_new_tokens"
    assert "from 1 to" in caught.value.message


def test_bad_parameters_are_rejected_before_anything_is_yielded():
    with pytest.raises(ValidationError) as caught:
        generate_text(request(temperature=3.0))

    assert caught.value.field == "temperature"


def test_a_conversation_the_chat_template_refuses_is_rejected_by_name(monkeypatch, tmp_path):
    strict = "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system role') }}{% endif %}{{ m['content'] }}{% endfor %}"
    folder = build_tiny_chat_model(tmp_path / "strict", chat_template=strict)
    monkeypatch.setenv("ATELIER_TEXT_MODELS", tiny_model_entry("tiny-strict", folder))

    with pytest.raises(ValidationError) as caught:
        generate_text(
            TextRequest(
                messages=(ChatMessage("user", "hi"),),
                model="tiny-strict",
                system="be brief",
                params=DecodingParams(max_new_tokens=4),
            )
        )

    assert caught.value.field == "messages"
    assert "no system role" in caught.value.message
