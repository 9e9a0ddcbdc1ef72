"""Decoding loops: KV-cached greedy/sampling, beam search, and token -> text assembly.

Every loop is a lazy generator: each ``next()`` runs exactly one forward pass,
so the caller checks cancellation between any two tokens and never pays for
a token it will not use. All state lives in the generator (cache, sequence,
random generator), none in globals, so many requests can run side by side.
"""
from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from generation.text.types import DecodingParams

if TYPE_CHECKING:
    from generation.text.model import LoadedTextModel


class TextAssembler:
    """Turns a growing token sequence into text deltas, holding back what may still change.

    Held back: a trailing partial UTF-8 character (decoded as U+FFFD) and any
    suffix that could be the start of a stop sequence. Once a stop sequence
    appears, the text is cut just before it and ``stopped`` becomes true. The
    concatenated deltas are the final text, by construction.
    """

    def __init__(self, decode: Callable[[Sequence[int]], str], stop: Sequence[str] = ()) -> None:
        self._decode = decode
        self._stop = tuple(s for s in stop if s)
        self._longest_stop = max((len(s) for s in self._stop), default=0)
        self.text = ""
        self.stopped = False

    def feed(self, tokens: Sequence[int], *, final: bool = False) -> str:
        """Take the whole sequence so far; return the new text that is safe to emit."""
        if self.stopped:
            return ""
        decoded = self._decode(tokens)
        cut = len(decoded)
        if not final:
            while cut and decoded[cut - 1] == "\ufffd":
                cut -= 1
        start = max(0, len(self.text) - self._longest_stop)
        hits = [i for i in (decoded.find(s, start, cut) for s in self._stop) if i >= 0]
        if hits:
            cut = min(hits)
            self.stopped = True
        elif not final:
            cut -= self._held_back(decoded[:cut])
        if cut <= len(self.text) or not decoded.startswith(self.text):
            # Nothing new, or the tokenizer re-spelled earlier text: wait for more tokens.
            return ""
        delta = decoded[len(self.text) : cut]
        self.text += delta
        return delta

    def _held_back(self, text: str) -> int:
        longest = 0
        for stop in self._stop:
            for size in range(min(len(stop) - 1, len(text)), longest, -1):
                if text.endswith(stop[:size]):
                    longest = size
                    break
        return longest


def _processors(params: DecodingParams, *, sampling: bool) -> list[Any]:
    """transformers' own processors, in ``generate``'s order, so both paths pick the same tokens."""
    from transformers.generation.logits_process import (
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    processors: list[Any] = []
    if params.repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(penalty=float(params.repetition_penalty)))
    if sampling:
        if params.temperature != 1.0:
            processors.append(TemperatureLogitsWarper(float(params.temperature)))
        if params.top_k > 0:
            processors.append(TopKLogitsWarper(top_k=params.top_k))
        if params.top_p < 1.0:
            processors.append(TopPLogitsWarper(top_p=float(params.top_p)))
    return processors


def sampled_tokens(
    loaded: LoadedTextModel, prompt_ids: Sequence[int], params: DecodingParams
) -> Generator[int, None, None]:
    """Greedy or random sampling, one token per ``next()``; endless (the caller stops it).

    Sampling with ``temperature`` 0 is greedy. ``params.seed`` seeds a
    generator owned by this loop, so the global torch RNG is never touched.
    """
    import torch
    from transformers import DynamicCache

    model = loaded.model
    dev = model.device
    sampling = params.strategy == "sample" and params.temperature > 0
    processors = _processors(params, sampling=sampling)
    generator = None
    if sampling:
        generator = torch.Generator(device=dev)
        generator.manual_seed(int(params.seed or 0))
    prompt = torch.tensor([list(prompt_ids)], dtype=torch.long, device=dev)
    # The whole sequence is only needed by the repetition penalty.
    seq = prompt
    cache = DynamicCache(config=model.config)
    inputs = prompt
    while True:
        with torch.inference_mode():
            logits = model(input_ids=inputs, cache=cache, use_cache=True, logits_to_keep=1).logits
            scores = logits[:, -1, :].float()
            for processor in processors:
                scores = processor(seq, scores)
            if sampling:
                token = torch.multinomial(torch.softmax(scores, dim=-1), 1, generator=generator)
            else:
                token = scores.argmax(dim=-1, keepdim=True)
            if processors:
                seq = torch.cat([seq, token], dim=-1)
        inputs = token
        yield int(token)


@dataclass(frozen=True)
class BeamStep:
    """Progress of beam search: ``tokens`` every surviving hypothesis starts with.

    On the last step ``tokens`` is the best hypothesis (without its end token),
    ``final`` is true and ``finish_reason`` says why it ended: ``eos`` (end
    token), ``stop`` (stop sequence) or ``length``.
    """

    tokens: list[int]
    generated: int
    final: bool = False
    finish_reason: str = ""


def _common_prefix(sequences: Sequence[Sequence[int]]) -> list[int]:
    first = sequences[0]
    size = len(first)
    for other in sequences[1:]:
        size = min(size, len(other))
        for i in range(size):
            if other[i] != first[i]:
                size = i
                break
    return list(first[:size])


def beam_steps(
    loaded: LoadedTextModel,
    prompt_ids: Sequence[int],
    params: DecodingParams,
    hits_stop: Callable[[Sequence[int]], bool],
) -> Generator[BeamStep, None, None]:
    """Beam search with ``num_beams`` beams and ``length_penalty``, one forward per ``next()``.

    Scores are summed log-probabilities divided by ``length ** length_penalty``.
    A hypothesis ends at an end token or when ``hits_stop`` says its text holds
    a stop sequence. Like ``generate``'s default (``early_stopping=False``),
    the search ends once ``num_beams`` hypotheses are done and no live beam
    can beat the worst of them, or at ``max_new_tokens``.
    """
    import torch
    from transformers import DynamicCache

    model = loaded.model
    dev = model.device
    width = params.num_beams
    penalty = params.length_penalty
    eos = loaded.eos_token_ids
    processors = _processors(params, sampling=False)
    prompt = list(prompt_ids)
    cache = DynamicCache(config=model.config)
    beams: list[list[int]] = [[]]
    beam_scores = torch.zeros(1, device=dev)
    done: list[tuple[float, list[int], str]] = []  # (normalized score, tokens, finish reason)
    inputs = torch.tensor([prompt], dtype=torch.long, device=dev)
    for length in range(1, params.max_new_tokens + 1):
        with torch.inference_mode():
            logits = model(input_ids=inputs, cache=cache, use_cache=True, logits_to_keep=1).logits
            scores = logits[:, -1, :].float()
            if processors:
                seq = torch.tensor([prompt + b for b in beams], dtype=torch.long, device=dev)
                for processor in processors:
                    scores = processor(seq, scores)
            totals = torch.log_softmax(scores, dim=-1) + beam_scores[:, None]
            vocab = totals.shape[-1]
            top_scores, top_index = totals.view(-1).topk(min(2 * width, totals.numel()))
        live: list[list[int]] = []
        live_scores: list[float] = []
        sources: list[int] = []
        for rank, (score, flat) in enumerate(zip(top_scores.tolist(), top_index.tolist(), strict=True)):
            source, token = divmod(flat, vocab)
            if token in eos:
                if rank < width:
                    done.append((score / length**penalty, beams[source], "eos"))
                continue
            candidate = [*beams[source], token]
            if hits_stop(candidate):
                if rank < width:
                    done.append((score / length**penalty, candidate, "stop"))
                continue
            live.append(candidate)
            live_scores.append(score)
            sources.append(source)
            if len(live) == width:
                break
        done.sort(key=lambda hyp: hyp[0], reverse=True)
        del done[width:]
        finished = not live or length == params.max_new_tokens
        if live and length == params.max_new_tokens:
            done.extend((s / length**penalty, b, "length") for s, b in zip(live_scores, live, strict=True))
            done.sort(key=lambda hyp: hyp[0], reverse=True)
        elif live and len(done) == width and done[-1][0] >= live_scores[0] / length**penalty:
            finished = True
        if finished:
            _, best, reason = done[0]
            yield BeamStep(best, length, final=True, finish_reason=reason)
            return
        yield BeamStep(_common_prefix(live + [hyp[1] for hyp in done]), length)
        beams = live
        beam_scores = torch.tensor(live_scores, device=dev)
        cache.reorder_cache(torch.tensor(sources, dtype=torch.long, device=dev))  # type: ignore[arg-type]
        inputs = torch.tensor([[b[-1]] for b in live], dtype=torch.long, device=dev)


def warm_up(loaded: LoadedTextModel, tokens: int = 4) -> None:
    """One short greedy generation: the first forward passes are much slower than the rest."""
    text = loaded.tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hello"}], add_generation_prompt=True, tokenize=False
    )
    prompt = loaded.tokenizer(text, add_special_tokens=False)["input_ids"]
    steps = sampled_tokens(loaded, prompt, DecodingParams(max_new_tokens=tokens))
    for _, token in zip(range(tokens), steps, strict=False):
        if token in loaded.eos_token_ids:
            break
    steps.close()
