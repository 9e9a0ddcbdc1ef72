"""Token choice for the transformers backend, and token -> text assembly for every backend.

``SampleState`` and ``BeamState`` hold one request's choice of tokens (its
random generator, its beams); they see only that request's rows of the
batch's logits, so a request picks the same tokens alone and in a batch.
The forward passes themselves belong to the backend (``torch_backend``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from generation.text.types import DecodingParams


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


class SampleState:
    """Greedy or random sampling for one request: one row of the batch.

    Sampling with ``temperature`` 0 is greedy. ``params.seed`` seeds a
    generator owned by this request, so the global torch RNG is never touched.
    """

    def __init__(self, prompt_ids: Sequence[int], params: DecodingParams, device: Any) -> None:
        import torch

        self.sampling = params.strategy == "sample" and params.temperature > 0
        self.processors = _processors(params, sampling=self.sampling)
        self.generator = None
        if self.sampling:
            self.generator = torch.Generator(device=device)
            self.generator.manual_seed(int(params.seed or 0))
        # The whole sequence is only needed by the repetition penalty.
        self.seq = torch.tensor([list(prompt_ids)], dtype=torch.long, device=device)

    def choose(self, logits: Any) -> int:
        """The next token from this request's ``(1, vocab)`` logits."""
        import torch

        scores = logits.float()
        for processor in self.processors:
            scores = processor(self.seq, scores)
        if self.sampling:
            token = torch.multinomial(torch.softmax(scores, dim=-1), 1, generator=self.generator)
        else:
            token = scores.argmax(dim=-1, keepdim=True)
        if self.processors:
            self.seq = torch.cat([self.seq, token], dim=-1)
        return int(token)


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


class BeamState:
    """Beam search with ``num_beams`` beams and ``length_penalty`` for one request.

    Scores are summed log-probabilities divided by ``length ** length_penalty``.
    A hypothesis ends at an end token or when ``hits_stop`` says its text holds
    a stop sequence. Like ``generate``'s default (``early_stopping=False``),
    the search ends once ``num_beams`` hypotheses are done and no live beam
    can beat the worst of them, or at ``max_new_tokens``. The request starts
    with one row (the prompt) and holds at most ``num_beams`` rows after.
    """

    def __init__(
        self,
        prompt_ids: Sequence[int],
        params: DecodingParams,
        eos: frozenset[int],
        hits_stop: Callable[[Sequence[int]], bool],
        device: Any,
    ) -> None:
        import torch

        self.params = params
        self.eos = eos
        self.hits_stop = hits_stop
        self.device = device
        self.processors = _processors(params, sampling=False)
        self.prompt = list(prompt_ids)
        self.beams: list[list[int]] = [[]]
        self.beam_scores = torch.zeros(1, device=device)
        self.done: list[tuple[float, list[int], str]] = []  # (normalized score, tokens, finish reason)
        self.length = 0

    def choose(self, logits: Any) -> tuple[list[int], list[int], BeamStep]:
        """Advance one token from this request's ``(rows, vocab)`` logits.

        Returns the source row and the new token of every beam that lives on
        (both empty on the final step), and the progress.
        """
        import torch

        width = self.params.num_beams
        penalty = self.params.length_penalty
        self.length += 1
        length = self.length
        scores = logits.float()
        if self.processors:
            seq = torch.tensor([self.prompt + b for b in self.beams], dtype=torch.long, device=self.device)
            for processor in self.processors:
                scores = processor(seq, scores)
        totals = torch.log_softmax(scores, dim=-1) + self.beam_scores[:, None]
        vocab = totals.shape[-1]
        top_scores, top_index = totals.view(-1).topk(min(2 * width, totals.numel()))
        live: list[list[int]] = []
        live_scores: list[float] = []
        sources: list[int] = []
        done = self.done
        for rank, (score, flat) in enumerate(zip(top_scores.tolist(), top_index.tolist(), strict=True)):
            source, token = divmod(flat, vocab)
            if token in self.eos:
                if rank < width:
                    done.append((score / length**penalty, self.beams[source], "eos"))
                continue
            candidate = [*self.beams[source], token]
            if self.hits_stop(candidate):
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
        last = length == self.params.max_new_tokens
        finished = not live or last
        if live and last:
            done.extend((s / length**penalty, b, "length") for s, b in zip(live_scores, live, strict=True))
            done.sort(key=lambda hyp: hyp[0], reverse=True)
        elif live and len(done) == width and done[-1][0] >= live_scores[0] / length**penalty:
            finished = True
        if finished:
            _, best, reason = done[0]
            return [], [], BeamStep(best, length, final=True, finish_reason=reason)
        self.beams = live
        self.beam_scores = torch.tensor(live_scores, device=self.device)
        return (
            sources,
            [b[-1] for b in live],
            BeamStep(_common_prefix(live + [hyp[1] for hyp in done]), length),
        )
