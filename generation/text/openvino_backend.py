"""The OpenVINO GenAI backend: a ``ContinuousBatchingPipeline`` over the int8 IR.

The pipeline batches on its own (paged KV cache, a scheduler, a sampler per
request): the engine adds requests, calls ``step()`` and reads each handle.
Prompts go in as token ids from the Hugging Face tokenizer and come back as
ids, so text assembly and stop sequences are the engine's, as on the
transformers backend. Beam search is the pipeline's own; it is told the stop
sequences so that a beam ends at one, and the engine cuts the final text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from generation.text.batching import Progress, Request
from generation.text.types import DecodingParams


@dataclass(frozen=True)
class OpenVINOPipelineSpec:
    """Everything a ``ContinuousBatchingPipeline`` is built from (picklable: a child process builds it)."""

    folder: str
    max_num_seqs: int
    properties: tuple[tuple[str, Any], ...]


def build_pipeline(spec: OpenVINOPipelineSpec) -> Any:
    """The pipeline of ``spec`` on the CPU."""
    import openvino_genai as ov_genai

    scheduler = ov_genai.SchedulerConfig()
    scheduler.max_num_seqs = spec.max_num_seqs
    scheduler.cache_size = 1  # GB of KV cache: 8 rows x 8k tokens of this model's fit in a fraction of it
    scheduler.enable_prefix_caching = False
    return ov_genai.ContinuousBatchingPipeline(spec.folder, scheduler, "CPU", dict(spec.properties))


def generation_config(params: DecodingParams, eos: frozenset[int]) -> Any:
    """Our decoding params as an ``openvino_genai.GenerationConfig``."""
    import openvino_genai as ov_genai

    config = ov_genai.GenerationConfig()
    config.max_new_tokens = params.max_new_tokens
    config.repetition_penalty = float(params.repetition_penalty)
    config.stop_token_ids = set(eos)
    if eos:
        config.eos_token_id = min(eos)
    if params.strategy == "beam" and params.num_beams > 1:
        config.num_beams = params.num_beams
        config.num_beam_groups = 1
        config.num_return_sequences = 1
        config.length_penalty = float(params.length_penalty)
        config.stop_strings = set(params.stop)
        config.include_stop_str_in_output = False
    elif params.strategy == "sample" and params.temperature > 0:
        config.do_sample = True
        config.temperature = float(params.temperature)
        if params.top_k > 0:
            config.top_k = params.top_k
        config.top_p = float(params.top_p)
        config.rng_seed = int(params.seed or 0)
    else:
        config.do_sample = False
    return config


@dataclass
class _Request:
    job: Request
    handle: Any
    beam: bool
    tokens: list[int] = field(default_factory=list)
    generated: int = 0


class OpenVINOBackend:
    name = "openvino"

    def __init__(self, pipeline: Any, eos: frozenset[int]) -> None:
        self.pipeline = pipeline
        self.eos = eos
        self.requests: dict[int, _Request] = {}

    def reset(self) -> None:
        for job_id in list(self.requests):
            self.remove(job_id)

    def remove(self, job_id: int) -> None:
        request = self.requests.pop(job_id, None)
        if request is not None:
            request.handle.stop()

    def step(self, joining: Sequence[Request]) -> dict[int, Progress]:
        import numpy as np
        import openvino as ov
        import openvino_genai as ov_genai

        for job in joining:
            ids = ov.Tensor(np.array([job.prompt_ids], dtype=np.int64))
            config = generation_config(job.params, self.eos)
            handle = self.pipeline.add_request(job.id, ids, config)
            self.requests[job.id] = _Request(job, handle, beam=config.num_beams > 1)
        self.pipeline.step()
        progress: dict[int, Progress] = {}
        for job_id, request in self.requests.items():
            status = request.handle.get_status()
            finished = status != ov_genai.GenerationStatus.RUNNING
            if request.beam:
                if not finished:
                    request.generated += 1
                    progress[job_id] = Progress([], request.generated)
                    continue
                best = max(request.handle.read_all(), key=lambda out: out.score)
                ids = list(best.generated_ids)
                progress[job_id] = self._final(request, ids, best.finish_reason)
                continue
            outputs = request.handle.read() if request.handle.can_read() else {}
            reason = None
            for output in outputs.values():
                request.tokens.extend(int(t) for t in output.generated_ids)
                reason = output.finish_reason
            text_tokens = [t for t in request.tokens if t not in self.eos]
            if finished:
                progress[job_id] = self._final(request, request.tokens, reason)
            elif outputs:
                progress[job_id] = Progress(text_tokens, len(request.tokens))
        return progress

    def _final(self, request: _Request, ids: list[int], reason: Any) -> Progress:
        import openvino_genai as ov_genai

        text = [t for t in ids if t not in self.eos]
        generated = len(ids)
        ended_by_eos = len(text) < len(ids)
        if reason == ov_genai.GenerationFinishReason.LENGTH:
            why = "length"
        elif ended_by_eos:
            why = "eos"
        else:
            why = "stop"
        return Progress(text, generated, final=True, reason=why)
