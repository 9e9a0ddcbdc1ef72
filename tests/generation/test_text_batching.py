"""The batched engine on a tiny model built in code (transformers backend, float32)."""
from __future__ import annotations

import threading

import pytest

from generation.errors import GenerationError, ValidationError
from generation.text import ChatMessage, DecodingParams, TextFinal, TextRequest, TokenDelta, load_text_model
from generation.text.batching import text_batch_size
from generation.text.engine import build_engine, encode_prompt
from generation.text.testing import build_tiny_chat_model, tiny_model_entry

TINY = "tiny-batching"
PROMPTS = ["hello there", "a", "what is the sea?", "tell me, tell me more", "zzz", "ok", "why?", "one two three four"]


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return build_tiny_chat_model(tmp_path_factory.mktemp("tiny-batching"), seed=1, context_length=128)


@pytest.fixture
def loaded(monkeypatch, tiny_folder):
    monkeypatch.setenv("ATELIER_TEXT_MODELS", tiny_model_entry(TINY, tiny_folder, context_length=128))
    monkeypatch.setenv("ATELIER_TEXT_DTYPE", "float32")
    monkeypatch.setenv("ATELIER_TEXT_BACKEND", "transformers")
    return load_text_model(TINY)


def prompt_ids(loaded, prompt):
    return encode_prompt(loaded, TextRequest(messages=(ChatMessage("user", prompt),), model=TINY))


def drain(stream):
    items = list(stream)
    *deltas, final = items
    assert all(isinstance(d, TokenDelta) for d in deltas)
    assert isinstance(final, TextFinal)
    assert "".join(d.text for d in deltas) == final.text
    return final


def alone(loaded, prompt, params):
    return drain(build_engine(loaded).submit(prompt_ids(loaded, prompt), params))


def together(engine, loaded, jobs):
    """Submit every (prompt, params, should_stop) at once, so they join in one step; drain them in threads."""
    with engine.held():
        streams = [engine.submit(prompt_ids(loaded, p), params, stop) for p, params, stop in jobs]
    finals: list[TextFinal | None] = [None] * len(streams)

    def read(i):
        finals[i] = drain(streams[i])

    threads = [threading.Thread(target=read, args=(i,)) for i in range(len(streams))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return finals


def test_greedy_gives_the_same_tokens_alone_and_in_a_batch_of_8(loaded):
    params = DecodingParams(max_new_tokens=40)
    expected = [alone(loaded, p, params) for p in PROMPTS]
    engine = build_engine(loaded, max_batch=8)

    finals = together(engine, loaded, [(p, params, None) for p in PROMPTS])

    assert [f.text for f in finals] == [e.text for e in expected]
    assert [f.completion_tokens for f in finals] == [e.completion_tokens for e in expected]
    assert all(e.batch_max == 1 for e in expected)
    assert max(f.batch_max for f in finals) == 8
    assert max(engine.step_sizes) == 8


def test_a_request_joins_a_running_batch_and_leaves_without_disturbing_it(loaded):
    long, short = DecodingParams(max_new_tokens=60), DecodingParams(max_new_tokens=10)
    expected_long = alone(loaded, PROMPTS[0], long)
    expected_short = alone(loaded, PROMPTS[2], short)
    engine = build_engine(loaded, max_batch=8)
    started = threading.Event()
    polls = []

    def long_running():
        polls.append(1)
        if len(polls) == 10:
            started.set()
        return False

    first = engine.submit(prompt_ids(loaded, PROMPTS[0]), long, long_running)
    reader = threading.Thread(target=lambda: polls.append(drain(first)))
    reader.start()
    assert started.wait(30)
    joined = drain(engine.submit(prompt_ids(loaded, PROMPTS[2]), short))
    reader.join(30)
    first_final = polls[-1]

    assert joined.text == expected_short.text
    assert joined.batch_max == 2
    assert first_final.text == expected_long.text
    assert first_final.batch_max == 2
    assert 1 < first_final.batch_mean < 2


def test_a_stopped_request_leaves_and_the_others_go_on(loaded):
    params = DecodingParams(max_new_tokens=40)
    expected = [alone(loaded, p, params) for p in PROMPTS[:3]]
    polls = []

    def stop_soon():
        polls.append(1)
        return len(polls) > 5

    engine = build_engine(loaded, max_batch=8)
    finals = together(engine, loaded, [(PROMPTS[0], params, None), (PROMPTS[1], params, stop_soon), (PROMPTS[2], params, None)])

    assert finals[1].finish_reason == "cancelled"
    assert finals[1].completion_tokens == 5
    assert [finals[0].text, finals[2].text] == [expected[0].text, expected[2].text]


def test_a_request_whose_stop_check_fails_ends_alone_with_an_error(loaded):
    params = DecodingParams(max_new_tokens=30)
    expected = alone(loaded, PROMPTS[0], params)

    def broken():
        raise RuntimeError("lost the database")

    engine = build_engine(loaded, max_batch=8)
    finals = together(engine, loaded, [(PROMPTS[0], params, None), (PROMPTS[1], params, broken)])

    assert (finals[1].finish_reason, finals[1].error) == ("error", "RuntimeError: lost the database")
    assert finals[0].text == expected.text


def test_closing_a_stream_early_stops_its_request(loaded):
    engine = build_engine(loaded, max_batch=8)
    stream = engine.submit(prompt_ids(loaded, PROMPTS[0]), DecodingParams(max_new_tokens=100))
    next(stream)
    stream.close()
    other = drain(engine.submit(prompt_ids(loaded, PROMPTS[1]), DecodingParams(max_new_tokens=5)))

    assert other.batch_max == 1


def test_a_stop_sequence_in_a_batch_cuts_only_its_own_text(loaded):
    params = DecodingParams(max_new_tokens=40)
    plain = alone(loaded, PROMPTS[0], params)
    stop = plain.text[6:9]
    engine = build_engine(loaded, max_batch=8)

    finals = together(
        engine,
        loaded,
        [(PROMPTS[0], DecodingParams(max_new_tokens=40, stop=(stop,)), None)] + [(p, params, None) for p in PROMPTS[1:4]],
    )

    assert finals[0].finish_reason == "stop"
    assert finals[0].text == plain.text[: plain.text.find(stop)]
    assert finals[0].batch_max == 4


def test_sampling_with_a_seed_is_the_same_alone_and_in_a_batch(loaded):
    params = DecodingParams(strategy="sample", temperature=1.0, max_new_tokens=30, seed=77)
    expected = alone(loaded, PROMPTS[0], params)
    engine = build_engine(loaded, max_batch=8)

    finals = together(engine, loaded, [(PROMPTS[0], params, None), (PROMPTS[0], params, None), (PROMPTS[1], params, None)])

    assert finals[0].text == finals[1].text == expected.text
    assert finals[0].batch_max == 3


def test_beam_search_is_the_same_alone_and_in_a_batch(loaded):
    beam = DecodingParams(strategy="beam", num_beams=3, max_new_tokens=20)
    greedy = DecodingParams(max_new_tokens=20)
    expected = alone(loaded, PROMPTS[0], beam)
    engine = build_engine(loaded, max_batch=8)

    finals = together(engine, loaded, [(PROMPTS[1], greedy, None), (PROMPTS[0], beam, None), (PROMPTS[2], greedy, None)])

    assert finals[1].text == expected.text
    assert finals[1].batch_max == 5


def test_beams_count_against_the_batch(loaded):
    beam = DecodingParams(strategy="beam", num_beams=3, max_new_tokens=20)
    greedy = DecodingParams(max_new_tokens=20)
    engine = build_engine(loaded, max_batch=4)

    finals = together(engine, loaded, [(PROMPTS[0], beam, None), (PROMPTS[1], greedy, None), (PROMPTS[2], greedy, None)])

    assert max(engine.step_sizes) == 4
    assert finals[0].batch_max == 4  # the beams and one greedy reply; the other waited for room
    assert finals[2].time_to_first_token > finals[1].time_to_first_token


def test_more_beams_than_the_batch_holds_is_rejected_by_name(loaded):
    engine = build_engine(loaded, max_batch=2)

    with pytest.raises(ValidationError) as caught:
        engine.submit(prompt_ids(loaded, "hi"), DecodingParams(strategy="beam", num_beams=3))

    assert caught.value.field == "num_beams"


def test_the_batch_size_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("ATELIER_TEXT_BATCH", "3")
    assert text_batch_size() == 3
    monkeypatch.setenv("ATELIER_TEXT_BATCH", "0")
    with pytest.raises(GenerationError, match="ATELIER_TEXT_BATCH"):
        text_batch_size()
    monkeypatch.delenv("ATELIER_TEXT_BATCH")
    assert text_batch_size() == 8


def test_an_engine_failure_fails_every_request_in_the_step_and_the_engine_goes_on(loaded):
    engine = build_engine(loaded, max_batch=8)
    calls = []

    def explode(*args):
        calls.append(1)
        if len(calls) == 6:
            raise RuntimeError("out of memory")

    hook = loaded.model.register_forward_hook(explode)
    try:
        finals = together(engine, loaded, [(p, DecodingParams(max_new_tokens=30), None) for p in PROMPTS[:2]])
    finally:
        hook.remove()
    after = drain(engine.submit(prompt_ids(loaded, PROMPTS[0]), DecodingParams(max_new_tokens=5)))

    assert [f.finish_reason for f in finals] == ["error", "error"]
    assert all(f.error == "RuntimeError: out of memory" for f in finals)
    assert after.finish_reason == "length"
