"""The transformers backend: a batched KV-cache loop over one ``DynamicCache``.

Rows of the batch are left-padded to one length; a 2-D attention mask hides
the padding and ``position_ids`` count each row's own tokens, so a row sees
exactly what it would see alone. Each step runs one forward pass over every
live row, then prefills the requests that join (each alone, its cache then
padded into the batch's). Every request picks its tokens from its own rows
(``SampleState``, ``BeamState``); the rows that live on, reordered for beam
search, are gathered with one ``index_select`` per layer.

transformers' own continuous batching (``generate_batch`` /
``init_continuous_batching``) was evaluated and not used: it takes one
``GenerationConfig`` for the whole manager (no per-request temperature,
top-k, top-p, seed or strategy), has no beam search, and needs a paged
attention implementation; see README.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from generation.text.batching import Job, Progress
from generation.text.decoding import BeamState, SampleState

if TYPE_CHECKING:
    from generation.text.loading import LoadedTextModel


@dataclass
class _Request:
    job: Job
    state: SampleState | BeamState
    rows: int = 1  # rows it holds in the batch now
    last: list[int] = field(default_factory=list)  # the token each row feeds next
    tokens: list[int] = field(default_factory=list)  # sampling: the tokens generated so far

    @property
    def beam(self) -> bool:
        return isinstance(self.state, BeamState)


class TorchBackend:
    """Decodes any number of requests, each with its own strategy, in one batch."""

    name = "transformers"

    def __init__(self, loaded: LoadedTextModel) -> None:
        self.loaded = loaded
        self.model = loaded.model
        self.device = loaded.model.device
        self.eos = loaded.eos_token_ids
        self.order: list[_Request] = []  # requests in row order
        self.cache: Any = None
        self.mask: Any = None  # (rows, length): 1 for a real token, 0 for padding

    def reset(self) -> None:
        self.order, self.cache, self.mask = [], None, None

    def remove(self, job_id: int) -> None:
        keep: list[int] = []
        start = 0
        for request in self.order:
            if request.job.id != job_id:
                keep.extend(range(start, start + request.rows))
            start += request.rows
        self.order = [r for r in self.order if r.job.id != job_id]
        self._gather(keep)

    def _state(self, job: Job) -> SampleState | BeamState:
        params = job.params
        if params.strategy == "beam" and params.num_beams > 1:
            decode = job.decode

            def hits_stop(candidate: Sequence[int]) -> bool:
                text = decode(candidate)
                return any(stop in text for stop in params.stop)

            stops = hits_stop if params.stop else lambda _: False
            return BeamState(job.prompt_ids, params, self.eos, stops, self.device)
        return SampleState(job.prompt_ids, params, self.device)

    def _advance(self, request: _Request, logits: Any) -> tuple[list[int], Progress]:
        """Pick the request's next tokens from its rows' logits; return the rows (local) that live on."""
        if isinstance(request.state, BeamState):
            sources, tokens, beam = request.state.choose(logits)
            request.last = tokens
            request.rows = len(sources)
            return sources, Progress(beam.tokens, beam.generated, beam.final, beam.finish_reason)
        token = request.state.choose(logits)
        if token in self.eos:
            request.rows = 0
            return [], Progress(list(request.tokens), len(request.tokens) + 1, final=True, reason="eos")
        request.tokens.append(token)
        request.last = [token]
        return [0], Progress(list(request.tokens), len(request.tokens))

    def step(self, joining: Sequence[Job]) -> dict[int, Progress]:
        import torch

        progress: dict[int, Progress] = {}
        if self.order:
            inputs = torch.tensor(
                [[t] for r in self.order for t in r.last], dtype=torch.long, device=self.device
            )
            positions = self.mask.sum(dim=1, keepdim=True)
            ones = torch.ones((self.mask.shape[0], 1), dtype=self.mask.dtype, device=self.device)
            self.mask = torch.cat([self.mask, ones], dim=1)
            with torch.inference_mode():
                logits = self.model(
                    input_ids=inputs,
                    attention_mask=self.mask,
                    position_ids=positions,
                    cache=self.cache,
                    use_cache=True,
                ).logits[:, -1, :]
            keep: list[int] = []
            start = 0
            for request in self.order:
                rows = request.rows
                sources, progress[request.job.id] = self._advance(request, logits[start : start + rows])
                keep.extend(start + s for s in sources)
                start += rows
            self.order = [r for r in self.order if r.rows]
            self._gather(keep)
        for job in joining:
            progress[job.id] = self._prefill(job)
        return progress

    def _prefill(self, job: Job) -> Progress:
        import torch
        from transformers import DynamicCache

        request = _Request(job=job, state=self._state(job))
        cache = DynamicCache(config=self.model.config)
        inputs = torch.tensor([job.prompt_ids], dtype=torch.long, device=self.device)
        with torch.inference_mode():
            logits = self.model(input_ids=inputs, cache=cache, use_cache=True, logits_to_keep=1).logits[
                :, -1, :
            ]
        sources, progress = self._advance(request, logits)
        if sources:
            index = torch.tensor(sources, dtype=torch.long, device=self.device)
            mask = torch.ones((len(sources), len(job.prompt_ids)), dtype=torch.long, device=self.device)
            self._join(request, cache, index, mask)
        return progress

    def _join(self, request: _Request, cache: Any, index: Any, mask: Any) -> None:
        """Pad the new rows' cache and the batch's to one length and append the new rows."""
        import torch
        import torch.nn.functional as F

        new_layers = [
            (layer.keys.index_select(0, index), layer.values.index_select(0, index)) for layer in cache.layers
        ]
        if self.cache is None or not self.order:
            for layer, (keys, values) in zip(cache.layers, new_layers, strict=True):
                layer.keys, layer.values = keys, values
            self.cache, self.mask, self.order = cache, mask, [request]
            return
        length, new_length = self.mask.shape[1], mask.shape[1]
        pad_old, pad_new = max(0, new_length - length), max(0, length - new_length)
        for layer, (keys, values) in zip(self.cache.layers, new_layers, strict=True):
            # The cache is (rows, heads, length, head_dim): pad the length on the left.
            layer.keys = torch.cat([F.pad(layer.keys, (0, 0, pad_old, 0)), F.pad(keys, (0, 0, pad_new, 0))])
            layer.values = torch.cat(
                [F.pad(layer.values, (0, 0, pad_old, 0)), F.pad(values, (0, 0, pad_new, 0))]
            )
        self.mask = torch.cat([F.pad(self.mask, (pad_old, 0)), F.pad(mask, (pad_new, 0))])
        self.order.append(request)

    def _gather(self, keep: list[int]) -> None:
        """Keep only the rows ``keep``, in that order, and drop padding no row needs any more."""
        import torch

        if self.mask is None:
            return
        if not keep:
            self.cache, self.mask = None, None
            return
        unchanged = keep == list(range(self.mask.shape[0]))
        mask = self.mask
        if not unchanged:
            index = torch.tensor(keep, dtype=torch.long, device=self.device)
            mask = mask.index_select(0, index)
        # Columns that are padding in every row hold nothing: cut them.
        lead = int((mask.cumsum(dim=1) == 0).sum(dim=1).min())
        if unchanged and not lead:
            return
        for layer in self.cache.layers:
            keys, values = layer.keys, layer.values
            if not unchanged:
                keys, values = keys.index_select(0, index), values.index_select(0, index)
            layer.keys, layer.values = keys[:, :, lead:], values[:, :, lead:]
        self.mask = mask[:, lead:]
