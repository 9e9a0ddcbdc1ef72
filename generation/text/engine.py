"""``generate_text``: a validated request in, a stream of deltas and one final record out.

Every request goes through the process's one ``TextEngine`` for its model
(``text_engine``), which decodes all the requests that threads hand it in
one batch; see ``batching``.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from generation.errors import ValidationError
from generation.text.batching import Backend, TextEngine, text_batch_size
from generation.text.types import ChatMessage, DecodingParams, TextFinal, TextRequest, TokenDelta
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
        raise ValidationError(
            "messages", f"the model's chat template rejects this conversation: {exc}"
        ) from exc
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


_engines: dict[str, tuple[LoadedTextModel, TextEngine]] = {}
_engines_lock = threading.Lock()


def _decode_fn(loaded: LoadedTextModel) -> Callable[[Sequence[int]], str]:
    tokenizer = loaded.tokenizer

    def decode(tokens: Sequence[int]) -> str:
        return str(
            tokenizer.decode(list(tokens), skip_special_tokens=True, clean_up_tokenization_spaces=False)
        )

    return decode


def text_engine(name: str) -> TextEngine:
    """The process-wide engine for model ``name``: loaded, warmed up, batch of ``ATELIER_TEXT_BATCH`` rows.

    The first call loads the model (``load_text_model``) and runs one short
    generation, because the first forward passes are much slower than the
    rest. Thread-safe. Raises like ``load_text_model``.
    """
    from generation.text.loading import load_text_model

    loaded = load_text_model(name)
    with _engines_lock:
        known = _engines.get(name)
        if known is not None and known[0] is loaded:
            return known[1]
        engine = build_engine(loaded)
        _engines[name] = (loaded, engine)
    _warm_up(loaded, engine)
    return engine


def build_engine(loaded: LoadedTextModel, *, max_batch: int | None = None) -> TextEngine:
    """A new engine over ``loaded`` (``text_engine`` keeps one per model; tests and benches build their own)."""
    batch = text_batch_size() if max_batch is None else max_batch
    return TextEngine(_backend(loaded), model=loaded.name, decode=_decode_fn(loaded), max_batch=batch)


def _backend(loaded: LoadedTextModel) -> Backend:
    if loaded.backend == "openvino":
        from generation.text.openvino_backend import OpenVINOBackend, OpenVINOPipelineSpec

        if isinstance(loaded.model, OpenVINOPipelineSpec):  # ATELIER_TEXT_ENGINE_PROCESS: in a child
            from generation.text.process_backend import ProcessBackend

            return ProcessBackend(loaded.model, loaded.eos_token_ids)
        return OpenVINOBackend(loaded.model, loaded.eos_token_ids)
    from generation.text.torch_backend import TorchBackend

    return TorchBackend(loaded)


def _warm_up(loaded: LoadedTextModel, engine: TextEngine, tokens: int = 4) -> None:
    request = TextRequest(messages=(ChatMessage("user", "Hello"),), model=loaded.name)
    for _ in engine.submit(encode_prompt(loaded, request), DecodingParams(max_new_tokens=tokens)):
        pass
    compute_threads_yield()


def compute_threads_yield() -> list[int]:
    """Lower the OS priority of this process's compute threads by ``ATELIER_ENGINE_NICE`` (default 5).

    The compute threads are the native ones that the runtime started
    (torch's pools, or OpenVINO's when ``ATELIER_TEXT_ENGINE_PROCESS=0``; its
    child process is niced as a whole) and the engine's scheduler: every thread
    that is not a Python thread, plus ``text-engine-*``. Decoding keeps every
    core busy, and the short Python steps around it (claiming a reply, building
    its prompt, the channel layer's round trips in this process, daphne and
    Redis) would otherwise wait their turn behind it; niced, they run first and
    the decode loses only the time they use. Linux only (a no-op elsewhere, or
    with ``ATELIER_ENGINE_NICE=0``). Returns the thread ids it lowered.
    """
    import os
    import threading

    from generation.config import engine_nice

    nice = engine_nice()
    tasks = f"/proc/{os.getpid()}/task"
    if nice <= 0 or not os.path.isdir(tasks):
        return []
    python = {t.native_id: t.name for t in threading.enumerate()}
    lowered = []
    for name in os.listdir(tasks):
        tid = int(name)
        if tid in python and not python[tid].startswith("text-engine-"):
            continue
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
                lowered.append(tid)
        except OSError:  # the thread ended meanwhile
            continue
    return lowered


def generate_text(
    request: TextRequest, *, should_stop: Callable[[], bool] | None = None
) -> Iterator[TokenDelta | TextFinal]:
    """Validate ``request``, then return a stream of ``TokenDelta`` ending in one ``TextFinal``.

    Raises ``ValidationError`` here, before any item is produced, for any bad
    parameter, an unknown model, an empty prompt, or a prompt that leaves no
    room for ``max_new_tokens`` in the context. Loads the model on first use
    (see ``text_engine``) and hands the request to the process's engine,
    which decodes it in a batch with whatever other threads asked for.
    ``should_stop`` is polled before every step the request takes part in;
    once it returns true no further token is computed for it and the stream
    ends with ``finish_reason="cancelled"``; closing the stream early stops
    it too. An exception while decoding ends the stream with
    ``finish_reason="error"`` and the text so far. Stop sequences are never
    part of the text. Sampling without a seed draws one, reported in
    ``TextFinal.params``.
    """
    validate_request(request)
    engine = text_engine(request.model)
    from generation.text.loading import load_text_model

    loaded = load_text_model(request.model)
    prompt_ids = encode_prompt(loaded, request)
    params = request.params
    _check_length(loaded, len(prompt_ids), params.max_new_tokens)
    if params.strategy == "sample" and params.seed is None:
        params = dataclasses.replace(params, seed=secrets.randbelow(MAX_SEED + 1))
    stream = engine.submit(prompt_ids, params, should_stop)
    compute_threads_yield()  # a pool may have grown threads since the warm-up
    return stream
