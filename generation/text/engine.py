"""``generate_text``: a validated request in, a stream of deltas and one final record out."""
from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import TYPE_CHECKING

from generation.errors import ValidationError
from generation.text.decoding import TextAssembler, beam_steps, sampled_tokens
from generation.text.types import DecodingParams, TextFinal, TextRequest, TokenDelta
from generation.text.validation import MAX_SEED, validate_request

if TYPE_CHECKING:
    from generation.text.model import LoadedTextModel


def encode_prompt(loaded: LoadedTextModel, request: TextRequest) -> list[int]:
    """The prompt's token ids: the messages through the model's chat template.

    Raises ``ValidationError("messages", ...)`` when the template refuses them.
    """
    messages = [{"role": m.role, "content": m.content} for m in request.messages]
    if request.system is not None:
        messages.insert(0, {"role": "system", "content": request.system})
    try:
        text = loaded.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    except Exception as exc:  # templates reject some conversations, e.g. roles out of turn
        raise ValidationError("messages", f"the model's chat template rejects this conversation: {exc}") from exc
    # The template already spells out every special token it wants.
    return list(loaded.tokenizer(text, add_special_tokens=False)["input_ids"])


def _check_length(loaded: LoadedTextModel, prompt_tokens: int, max_new_tokens: int) -> None:
    context = loaded.context_length
    if prompt_tokens >= context:
        raise ValidationError(
            "messages", f"the prompt is {prompt_tokens} tokens; the model's context holds {context} in all"
        )
    if prompt_tokens + max_new_tokens > context:
        raise ValidationError(
            "max_new_tokens",
            f"must be from 1 to {context - prompt_tokens} for this prompt "
            f"({prompt_tokens} tokens of the model's {context}), got {max_new_tokens}",
        )


def generate_text(
    request: TextRequest, *, should_stop: Callable[[], bool] | None = None
) -> Iterator[TokenDelta | TextFinal]:
    """Validate ``request``, then return a stream of ``TokenDelta`` ending in one ``TextFinal``.

    Raises ``ValidationError`` here, before any item is produced, for any bad
    parameter, an unknown model, an empty prompt, or a prompt that leaves no
    room for ``max_new_tokens`` in the context. Loads the model on first use
    (see ``load_text_model``). ``should_stop`` is polled before every forward
    pass; once it returns true no further token is computed and the stream
    ends with ``finish_reason="cancelled"``. An exception while decoding ends
    the stream with ``finish_reason="error"`` and the text so far. Stop
    sequences are never part of the text. Sampling without a seed draws one,
    reported in ``TextFinal.params``.
    """
    from generation.text.loading import load_text_model

    validate_request(request)
    loaded = load_text_model(request.model)
    prompt_ids = encode_prompt(loaded, request)
    params = request.params
    _check_length(loaded, len(prompt_ids), params.max_new_tokens)
    if params.strategy == "sample" and params.seed is None:
        params = dataclasses.replace(params, seed=secrets.randbelow(MAX_SEED + 1))
    return _stream(loaded, prompt_ids, params, should_stop or (lambda: False))


def _decode_fn(loaded: LoadedTextModel) -> Callable[[Sequence[int]], str]:
    tokenizer = loaded.tokenizer

    def decode(tokens: Sequence[int]) -> str:
        return tokenizer.decode(list(tokens), skip_special_tokens=True, clean_up_tokenization_spaces=False)

    return decode


def _stream(
    loaded: LoadedTextModel,
    prompt_ids: list[int],
    params: DecodingParams,
    should_stop: Callable[[], bool],
) -> Iterator[TokenDelta | TextFinal]:
    started = time.perf_counter()
    decode = _decode_fn(loaded)
    assembler = TextAssembler(decode, params.stop)
    first_at: float | None = None
    last_at = started
    completion_tokens = 0
    tokens: list[int] = []
    finish_reason = "length"
    error: str | None = None
    index = 0
    steps: Generator[object, None, None] | None = None
    try:
        if params.strategy == "beam" and params.num_beams > 1:

            def hits_stop(candidate: Sequence[int]) -> bool:
                text = decode(candidate)
                return any(stop in text for stop in params.stop)

            beams = beam_steps(loaded, prompt_ids, params, hits_stop if params.stop else lambda _: False)
            steps = beams
            while True:
                if should_stop():
                    finish_reason = "cancelled"
                    break
                step = next(beams)
                last_at = time.perf_counter()
                first_at = first_at or last_at
                tokens = step.tokens
                completion_tokens = step.generated
                if step.final:
                    completion_tokens = len(tokens) + (step.finish_reason == "eos")
                    finish_reason = "length" if step.finish_reason == "length" else "stop"
                    break
                delta = assembler.feed(tokens)
                if delta:
                    yield TokenDelta(delta, index, last_at - started)
                    index += 1
        else:
            sampled = sampled_tokens(loaded, prompt_ids, params)
            steps = sampled
            while completion_tokens < params.max_new_tokens:
                if should_stop():
                    finish_reason = "cancelled"
                    break
                token = next(sampled)
                last_at = time.perf_counter()
                first_at = first_at or last_at
                completion_tokens += 1
                if token in loaded.eos_token_ids:
                    finish_reason = "stop"
                    break
                tokens.append(token)
                delta = assembler.feed(tokens)
                if delta:
                    yield TokenDelta(delta, index, last_at - started)
                    index += 1
                if assembler.stopped:
                    finish_reason = "stop"
                    break
    except Exception as exc:  # the stream's contract: failures become a final record
        finish_reason = "error"
        error = f"{type(exc).__name__}: {exc}"
    finally:
        if steps is not None:
            steps.close()
    try:
        delta = assembler.feed(tokens, final=True)
    except Exception as exc:
        delta = ""
        finish_reason, error = "error", error or f"{type(exc).__name__}: {exc}"
    if delta:
        yield TokenDelta(delta, index, time.perf_counter() - started)
    elapsed = time.perf_counter() - started
    if first_at is not None and completion_tokens > 1 and last_at > first_at:
        rate = (completion_tokens - 1) / (last_at - first_at)
    else:
        rate = completion_tokens / elapsed if elapsed > 0 else 0.0
    yield TextFinal(
        text=assembler.text,
        finish_reason=finish_reason,
        prompt_tokens=len(prompt_ids),
        completion_tokens=completion_tokens,
        time_to_first_token=None if first_at is None else first_at - started,
        tokens_per_second=rate,
        elapsed=elapsed,
        model=loaded.name,
        params=params,
        error=error,
    )
