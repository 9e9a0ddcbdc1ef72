"""Loading text models: GGUF -> cached safetensors copy -> a warm model in memory.

Loading a GGUF dequantizes every tensor (about 14 s for the default model on
two cores); the safetensors copy that ``prepare_text_model`` writes under
``model_cache_dir()`` loads in about 1 s. ``load_text_model`` keeps one loaded
copy per model per process.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import platform
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from generation.config import configure_torch_threads, device, model_cache_dir
from generation.errors import GenerationError
from generation.text.model import LoadedTextModel
from generation.text.registry import TextModelSpec, get_text_model_spec
from generation.text.types import DEFAULT_TEXT_MODEL

DTYPE_ENV_VAR = "ATELIER_TEXT_DTYPE"
BACKEND_ENV_VAR = "ATELIER_TEXT_BACKEND"
_BACKENDS = ("auto", "openvino", "transformers")
_DTYPES = ("float32", "bfloat16", "float16")
_MARKER = "atelier-source.json"

_cache: dict[str, LoadedTextModel] = {}
_cache_lock = threading.Lock()
_name_locks: dict[str, threading.Lock] = {}
_prepare_lock = threading.Lock()

__all__ = [
    "LoadedTextModel",
    "clear_text_model_cache",
    "load_text_model",
    "prepare_text_model",
    "text_dtype_name",
]


def _cpu_supports_bf16() -> bool:
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    if capability.startswith("AVX512") or "AMX" in capability:
        return True
    if platform.machine() in ("aarch64", "arm64"):
        try:
            flags = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
        return " bf16" in flags
    return False


def text_dtype_name() -> str:
    """``ATELIER_TEXT_DTYPE`` if set; else bf16 on CUDA and on CPUs with bf16 support, fp32 otherwise.

    bf16 halves the bytes read per token, which is what bounds decoding speed
    on CPU (measured on this model: 48 tok/s bf16 against 25 tok/s fp32).
    """
    forced = os.environ.get(DTYPE_ENV_VAR, "").strip()
    if forced:
        if forced not in _DTYPES:
            raise GenerationError(f"{DTYPE_ENV_VAR} must be one of {', '.join(_DTYPES)}, got {forced!r}")
        return forced
    if device().startswith("cuda"):
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "bfloat16" if _cpu_supports_bf16() else "float32"


def gguf_fingerprint(gguf: Path) -> dict[str, Any]:
    """What the converted copy records of its source: a new GGUF means a new conversion."""
    # The resolved path: checkouts that reach one virtual environment through a
    # symlink share the cache instead of converting it again, each in turn.
    stat = gguf.stat()
    return {"gguf": str(gguf.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _is_complete(folder: Path, fingerprint: dict[str, Any]) -> bool:
    try:
        return json.loads((folder / _MARKER).read_text()) == fingerprint
    except (OSError, ValueError):
        return False


def _local_folder(spec: TextModelSpec) -> Path:
    if Path(spec.source).is_dir():
        return Path(spec.source)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(spec.source, local_files_only=True))
    except Exception as exc:
        raise GenerationError(
            f"text model {spec.name!r}: {spec.source!r} is neither a folder nor a cached hub model"
        ) from exc


def _gguf_file(spec: TextModelSpec) -> Path:
    path = spec.gguf_path()
    if path is not None and path.is_file():
        return path
    if spec.gguf_file and not Path(spec.source).is_dir():
        from huggingface_hub import hf_hub_download

        try:
            return Path(hf_hub_download(spec.source, spec.gguf_file, local_files_only=True))
        except Exception as exc:
            raise GenerationError(
                f"text model {spec.name!r}: {spec.gguf_file!r} is not in the local hub cache for {spec.source!r}"
            ) from exc
    raise GenerationError(f"text model {spec.name!r}: GGUF file not found: {path}")


def prepare_text_model(name: str = DEFAULT_TEXT_MODEL) -> Path:
    """Return a folder that ``from_pretrained`` loads quickly, building it if needed.

    For a GGUF spec this dequantizes the file once and writes a safetensors
    copy (in the dtype this machine decodes in) to
    ``model_cache_dir()/text/<name>/<dtype>``. Idempotent: a second call only
    checks a marker file. The copy is written to a temporary folder and
    renamed, so concurrent callers never see half a copy. For other specs it
    returns the local folder as is. Raises ``GenerationError`` when the files
    are missing.
    """
    spec = get_text_model_spec(name)
    if spec.gguf_file is None:
        return _local_folder(spec)
    gguf = _gguf_file(spec)
    dtype_name = text_dtype_name()
    target = model_cache_dir() / "text" / name / dtype_name
    fingerprint = gguf_fingerprint(gguf)
    with _prepare_lock:
        if _is_complete(target, fingerprint):
            return target
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dtype_name}-", dir=target.parent))
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=str(gguf))
            model = AutoModelForCausalLM.from_pretrained(
                str(gguf.parent),
                gguf_file=str(gguf),
                # Unpack the blocks now: kept packed, every forward unpacks them again.
                quantization_config=GgufConfig(dequantize=True),
                dtype=getattr(torch, dtype_name),
            )
            # save_pretrained refuses to write a model that still looks quantized.
            model.hf_quantizer = None  # type: ignore[assignment]
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
            (staging / _MARKER).write_text(json.dumps(fingerprint))
            staging.chmod(0o755)  # mkdtemp's 0700 would hide the copy from a worker running as another user
            if _is_complete(target, fingerprint):  # another process finished first; it may be loading it
                return target
            if target.exists():  # a copy of an older file
                shutil.rmtree(target)
            try:
                staging.rename(target)
            except OSError:
                if not _is_complete(target, fingerprint):  # not another process's finished copy
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _eos_token_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    ids: set[int] = set()
    for value in (
        tokenizer.eos_token_id,
        getattr(model.generation_config, "eos_token_id", None),
        getattr(model.config, "eos_token_id", None),
    ):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list | tuple):
            ids.update(v for v in value if isinstance(v, int))
    return frozenset(ids)


def text_backend_name(name: str = DEFAULT_TEXT_MODEL) -> str:
    """The backend that decodes ``name`` here: ``openvino`` or ``transformers``.

    ``ATELIER_TEXT_BACKEND`` (``auto``, ``openvino``, ``transformers``) forces
    one. ``auto``: transformers on CUDA; on a CPU, OpenVINO when the model's
    IR has been exported (``prepare_openvino_model``) and ``openvino_genai``
    imports; transformers otherwise.
    """
    from generation.text.export import openvino_ir_ready

    forced = os.environ.get(BACKEND_ENV_VAR, "").strip() or "auto"
    if forced not in _BACKENDS:
        raise GenerationError(f"{BACKEND_ENV_VAR} must be one of {', '.join(_BACKENDS)}, got {forced!r}")
    if forced == "openvino":
        if not openvino_ir_ready(name):
            raise GenerationError(
                f"{BACKEND_ENV_VAR}=openvino but text model {name!r} has no OpenVINO IR: "
                "run `python -m generation prepare`"
            )
        return "openvino"
    if forced == "transformers" or device().startswith("cuda"):
        return "transformers"
    if importlib.util.find_spec("openvino_genai") is None:
        return "transformers"
    return "openvino" if openvino_ir_ready(name) else "transformers"


def prepare_openvino_text_model(name: str = DEFAULT_TEXT_MODEL) -> Path | None:
    """Export ``name`` to OpenVINO IR (int8 weights) once, when this machine would serve it with OpenVINO.

    Skipped (returns ``None``) on CUDA, with ``ATELIER_TEXT_BACKEND=transformers``,
    or when ``openvino_genai`` is not installed. The first run builds the
    exporter's own environment (see ``generation.text.export``). Raises
    ``GenerationError`` when the export fails.
    """
    from generation.text.export import prepare_openvino_model

    forced = os.environ.get(BACKEND_ENV_VAR, "").strip() or "auto"
    if forced == "transformers" or (forced == "auto" and device().startswith("cuda")):
        return None
    if importlib.util.find_spec("openvino_genai") is None:
        return None
    return prepare_openvino_model(name, prepare_text_model(name))


def _load(name: str) -> LoadedTextModel:
    if text_backend_name(name) == "openvino":
        return _load_openvino(name)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    configure_torch_threads()
    spec = get_text_model_spec(name)
    folder = prepare_text_model(name)
    dtype_name = text_dtype_name()
    target_device = device()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    if not getattr(tokenizer, "chat_template", None):
        raise GenerationError(f"text model {name!r} has no chat template")
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=getattr(torch, dtype_name))
    model.to(target_device).eval()  # type: ignore[arg-type]
    positions = getattr(model.config, "max_position_embeddings", None) or spec.context_length
    loaded = LoadedTextModel(
        spec=spec,
        model=model,
        tokenizer=tokenizer,
        device=target_device,
        dtype_name=dtype_name,
        eos_token_ids=_eos_token_ids(model, tokenizer),
        context_length=min(spec.context_length, positions),
        load_seconds=0.0,
    )
    return dataclasses.replace(loaded, load_seconds=time.perf_counter() - started)


def _load_openvino(name: str) -> LoadedTextModel:
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    from generation.text.batching import text_batch_size
    from generation.text.export import openvino_ir_dir
    from generation.text.openvino_backend import OpenVINOPipelineSpec, build_pipeline
    from generation.text.process_backend import engine_in_child

    started = time.perf_counter()
    spec = get_text_model_spec(name)
    folder = openvino_ir_dir(name)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    if not getattr(tokenizer, "chat_template", None):
        raise GenerationError(f"text model {name!r} has no chat template")
    # Everything the pipeline is built from, read now: a child process builds it later.
    pipeline_spec = OpenVINOPipelineSpec(
        folder=str(folder),
        max_num_seqs=text_batch_size(),
        properties=(("INFERENCE_NUM_THREADS", _cpu_threads()), *_openvino_precision().items()),
    )
    # In a child (the default) the pipeline is built there and ``model`` is its spec;
    # in this process it is the pipeline itself.
    pipeline: Any = pipeline_spec if engine_in_child() else build_pipeline(pipeline_spec)
    config = AutoConfig.from_pretrained(str(folder))
    holder = type(
        "_Holder", (), {"config": config, "generation_config": GenerationConfig.from_pretrained(str(folder))}
    )
    positions = getattr(config, "max_position_embeddings", None) or spec.context_length
    loaded = LoadedTextModel(
        spec=spec,
        model=pipeline,
        tokenizer=tokenizer,
        device="cpu",
        dtype_name="int8",
        eos_token_ids=_eos_token_ids(holder, tokenizer),
        context_length=min(spec.context_length, positions),
        load_seconds=0.0,
        backend="openvino",
    )
    return dataclasses.replace(loaded, load_seconds=time.perf_counter() - started)


OPENVINO_PRECISION_ENV_VAR = "ATELIER_OPENVINO_PRECISION"


def _openvino_precision() -> dict[str, str]:
    """``ATELIER_OPENVINO_PRECISION``: ``fast`` (default) or ``exact``.

    ``fast`` keeps the CPU plugin's defaults (bf16 compute on AMX/AVX512-BF16,
    u8 KV cache, dynamic int8 activations). ``exact`` computes in f32 with an
    f32 KV cache and no dynamic quantization: a greedy reply then has the same
    tokens alone and in a batch (measured: 8 of 8 prompts over 48 tokens, against
    4 of 8 with ``fast``, whose kernels round differently with the batch's shape),
    and batches that gain less (bench/text_engine_batch.py on a quiet 2-core
    machine, 64 tokens: one stream about as fast, 8 at once 2.6-3.2x one stream
    against 5.5x with ``fast``; a loaded machine once measured one stream at a
    third of ``fast``'s speed).
    """
    mode = os.environ.get(OPENVINO_PRECISION_ENV_VAR, "").strip() or "fast"
    if mode not in ("exact", "fast"):
        raise GenerationError(f"{OPENVINO_PRECISION_ENV_VAR} must be exact or fast, got {mode!r}")
    if mode == "fast":
        return {}
    return {"INFERENCE_PRECISION_HINT": "f32", "DYNAMIC_QUANTIZATION_GROUP_SIZE": "0", "KV_CACHE_PRECISION": "f32"}


def _cpu_threads() -> int:
    wanted = os.environ.get("ATELIER_TORCH_THREADS")
    return int(wanted) if wanted else max(1, len(os.sched_getaffinity(0)))


def load_text_model(name: str = DEFAULT_TEXT_MODEL) -> LoadedTextModel:
    """The loaded, warmed-up model ``name``, from this process's cache when possible.

    The first call per name prepares the safetensors copy if needed, loads it
    on ``device()`` in ``text_dtype_name()`` and runs one short generation,
    because the first forward pass is much slower than the rest. Thread-safe:
    concurrent callers wait for one load. Raises ``ValidationError`` for an
    unknown name and ``GenerationError`` when the model cannot be loaded.
    """
    with _cache_lock:
        if name in _cache:
            return _cache[name]
        lock = _name_locks.setdefault(name, threading.Lock())
    with lock:
        with _cache_lock:
            if name in _cache:
                return _cache[name]
        loaded = _load(name)
        with _cache_lock:
            _cache[name] = loaded
        return loaded


def clear_text_model_cache() -> None:
    """Forget every loaded model (tests; freeing memory in a long-lived worker)."""
    with _cache_lock:
        _cache.clear()
