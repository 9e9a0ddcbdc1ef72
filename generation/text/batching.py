"""One engine per model per process: many threads hand requests in, each gets its own stream back.

A scheduler thread owns the backend. Before every step it admits waiting
requests while their rows fit in ``ATELIER_TEXT_BATCH`` (a beam search takes
``num_beams`` rows, any other request one), polls every live request's
``should_stop``, then runs one step: one forward pass over every live row,
plus the prefill of the requests that join. A request leaves the batch when
it finishes, is stopped or fails; the others go on. Each request turns its
tokens into text itself (``TextAssembler``), so stop sequences, even one that
lands inside a token, are handled the same way on every backend.

The engine records the number of rows of every step, and each request's
final record carries the largest and the mean batch it was decoded in.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from generation.errors import GenerationError
from generation.text.decoding import TextAssembler
from generation.text.types import DecodingParams, TextFinal, TokenDelta

logger = logging.getLogger(__name__)

BATCH_ENV_VAR = "ATELIER_TEXT_BATCH"
DEFAULT_BATCH = 8


def text_batch_size() -> int:
    """``ATELIER_TEXT_BATCH`` (default 8): the most rows one step decodes."""
    raw = os.environ.get(BATCH_ENV_VAR, "").strip()
    if not raw:
        return DEFAULT_BATCH
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise GenerationError(f"{BATCH_ENV_VAR} must be a positive integer, got {raw!r}")
    return value


def rows_of(params: DecodingParams) -> int:
    """How many rows of the batch a request takes: its beams, or one."""
    return params.num_beams if params.strategy == "beam" and params.num_beams > 1 else 1


@dataclass
class Progress:
    """What one step did for one request.

    ``tokens``: the text-bearing tokens so far (for beam search, the prefix
    every live beam shares; on the final step the best hypothesis), never an
    end token. ``generated``: tokens generated so far, an end token included.
    ``final``: the backend is done with the request; ``reason`` is then
    ``eos``, ``length`` or ``stop`` (a stop sequence, beam search only).
    """

    tokens: list[int]
    generated: int
    final: bool = False
    reason: str = ""


class Request(Protocol):
    """What a backend reads of a request that joins: ``Job`` is one."""

    @property
    def id(self) -> int: ...

    @property
    def prompt_ids(self) -> list[int]: ...

    @property
    def params(self) -> DecodingParams: ...


class Backend(Protocol):
    """What the engine needs of a backend. Only the scheduler thread calls it."""

    name: str

    def step(self, joining: Sequence[Job]) -> dict[int, Progress]:
        """Add ``joining``, then run one step over every request; return each one's progress.

        Raises when the step fails; the engine then fails every request in it.
        """

    def remove(self, job_id: int) -> None:
        """Forget a request (finished, stopped or failed) and free its rows."""

    def reset(self) -> None:
        """Forget every request, after a failed step."""


@dataclass(eq=False)
class Job:
    """One request inside the engine; its stream reads ``out``."""

    id: int
    prompt_ids: list[int]
    params: DecodingParams
    should_stop: Callable[[], bool]
    decode: Callable[[Sequence[int]], str]
    model: str
    backend: str
    rows: int
    out: queue.Queue[TokenDelta | TextFinal] = field(default_factory=queue.Queue)
    started: float = field(default_factory=time.perf_counter)
    first_at: float | None = None
    last_at: float = 0.0
    index: int = 0
    tokens: list[int] = field(default_factory=list)
    completion_tokens: int = 0
    batch_sizes: list[int] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)
    assembler: TextAssembler = field(init=False)

    def __post_init__(self) -> None:
        self.assembler = TextAssembler(self.decode, self.params.stop)
        self.last_at = self.started

    def feed(self, progress: Progress, batch: int) -> str | None:
        """Take one step's progress; emit the safe new text. Returns the finish reason once done."""
        self.batch_sizes.append(batch)
        self.last_at = time.perf_counter()
        self.first_at = self.first_at or self.last_at
        self.tokens = progress.tokens
        self.completion_tokens = progress.generated
        if progress.final:
            return "length" if progress.reason == "length" else "stop"
        self._emit(self.assembler.feed(self.tokens))
        if self.assembler.stopped:
            return "stop"
        if self.completion_tokens >= self.params.max_new_tokens:
            return "length"
        return None

    def _emit(self, delta: str) -> None:
        if delta:
            self.out.put(TokenDelta(delta, self.index, time.perf_counter() - self.started))
            self.index += 1

    def finish(self, finish_reason: str, error: str | None = None) -> None:
        """Flush the held-back text and put the final record."""
        try:
            self._emit(self.assembler.feed(self.tokens, final=True))
        except Exception as exc:
            finish_reason, error = "error", error or f"{type(exc).__name__}: {exc}"
        elapsed = time.perf_counter() - self.started
        done = self.completion_tokens
        if self.first_at is not None and done > 1 and self.last_at > self.first_at:
            rate = (done - 1) / (self.last_at - self.first_at)
        else:
            rate = done / elapsed if elapsed > 0 else 0.0
        sizes = self.batch_sizes
        self.out.put(
            TextFinal(
                text=self.assembler.text,
                finish_reason=finish_reason,
                prompt_tokens=len(self.prompt_ids),
                completion_tokens=done,
                time_to_first_token=None if self.first_at is None else self.first_at - self.started,
                tokens_per_second=rate,
                elapsed=elapsed,
                model=self.model,
                params=self.params,
                error=error,
                backend=self.backend,
                batch_max=max(sizes, default=0),
                batch_mean=sum(sizes) / len(sizes) if sizes else 0.0,
            )
        )


class TextEngine:
    """The process's engine for one loaded model. Thread-safe; see the module docstring."""

    def __init__(
        self, backend: Backend, *, model: str, decode: Callable[[Sequence[int]], str], max_batch: int
    ) -> None:
        self.backend = backend
        self.model = model
        self.decode = decode
        self.max_batch = max_batch
        self.step_sizes: list[int] = []  # rows per step, newest last (bounded)
        self._ids = itertools.count(1)
        self._waiting: list[Job] = []
        self._live: dict[int, Job] = {}
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(
        self, prompt_ids: Sequence[int], params: DecodingParams, should_stop: Callable[[], bool] | None = None
    ) -> Iterator[TokenDelta | TextFinal]:
        """Queue a request (already validated) and return its stream.

        The stream yields ``TokenDelta``s and ends with one ``TextFinal``.
        ``should_stop`` is polled on the engine's thread before every step the
        request takes part in; closing the stream early stops the request too.
        """
        rows = rows_of(params)
        if rows > self.max_batch:
            from generation.errors import ValidationError

            raise ValidationError(
                "num_beams", f"must be at most {self.max_batch} (the engine's batch), got {rows}"
            )
        if self._closed:
            raise GenerationError(f"the text engine of {self.model!r} is closed")
        job = Job(
            id=next(self._ids),
            prompt_ids=list(prompt_ids),
            params=params,
            should_stop=should_stop or (lambda: False),
            decode=self.decode,
            model=self.model,
            backend=self.backend.name,
            rows=rows,
        )
        with self._wake:
            self._waiting.append(job)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name=f"text-engine-{self.model}", daemon=True
                )
                self._thread.start()
            self._wake.notify()
        return self._read(job)

    def close(self) -> None:
        """Stop once every request has ended, and release the backend (a child process, say)."""
        with self._wake:
            self._closed = True
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join()
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Admit nothing while inside: requests submitted in the block join the batch together (tests, benches)."""
        with self._wake:
            yield

    def _read(self, job: Job) -> Iterator[TokenDelta | TextFinal]:
        try:
            while True:
                item = job.out.get()
                yield item
                if isinstance(item, TextFinal):
                    return
        finally:
            job.cancelled.set()

    # --- the scheduler thread -------------------------------------------------

    def _admit(self) -> list[Job]:
        """Waiting requests that fit, first come first served; called under the lock."""
        used = sum(job.rows for job in self._live.values())
        joining: list[Job] = []
        while self._waiting and used + self._waiting[0].rows <= self.max_batch:
            job = self._waiting.pop(0)
            used += job.rows
            joining.append(job)
        return joining

    def _stops(self, jobs: Sequence[Job]) -> list[tuple[Job, str, str | None]]:
        """The requests to end before this step: stopped, or whose ``should_stop`` raised."""
        ending: list[tuple[Job, str, str | None]] = []
        for job in jobs:
            try:
                if job.cancelled.is_set() or job.should_stop():
                    ending.append((job, "cancelled", None))
            except Exception as exc:  # a broken callback fails its own request only
                ending.append((job, "error", f"{type(exc).__name__}: {exc}"))
        return ending

    def _end(self, job: Job, reason: str, error: str | None = None) -> None:
        if self._live.pop(job.id, None) is not None:
            try:
                self.backend.remove(job.id)
            except Exception:
                logger.exception("text engine: removing request %s failed", job.id)
        job.finish(reason, error)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._waiting and not self._live:
                    if self._closed:
                        return
                    self._wake.wait()
                joining = self._admit()
            # Let the threads that wait on streams run first: a stop flag they set now
            # (a signal handler runs only in the main thread) is then seen before this step.
            time.sleep(0)
            for job, reason, error in self._stops(joining):
                joining.remove(job)
                job.finish(reason, error)
            for job, reason, error in self._stops(list(self._live.values())):
                self._end(job, reason, error)
            if not joining and not self._live:
                continue
            try:
                for job in joining:
                    self._live[job.id] = job
                progress = self.backend.step(joining)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                logger.warning("text engine step failed: %s", error)
                for job in list(self._live.values()):
                    self._live.pop(job.id)
                    job.finish("error", error)
                try:
                    self.backend.reset()
                except Exception:  # the next step tries again; this thread must live on
                    logger.exception("text engine: resetting the backend failed")
                continue
            # The batch of this step: every request in it, including one whose prefill the
            # backend scheduled for a later step (OpenVINO's scheduler may).
            rows = sum(job.rows for job in self._live.values())
            self.step_sizes.append(rows)
            del self.step_sizes[:-4096]
            for job_id, step in progress.items():
                live = self._live.get(job_id)
                if live is None:
                    continue
                try:
                    finish = live.feed(step, rows)
                except Exception as exc:
                    self._end(live, "error", f"{type(exc).__name__}: {exc}")
                    continue
                if finish is not None:
                    self._end(live, finish)
