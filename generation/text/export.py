"""Exporting a text model to OpenVINO IR with int8 weights, in an environment of its own.

``optimum-intel`` (the exporter OpenVINO GenAI expects: a stateful model,
the paged-attention-ready graph, and the tokenizer and detokenizer IRs from
``openvino-tokenizers``) pins ``transformers<5.6`` and wants ``torchvision``,
which cannot live beside Atelier's transformers. So the export runs in a
small virtual environment of its own, ``var/venvs/openvino-export``, built
once from the exact pins in ``requirements-openvino-export.txt``. Serving
needs only ``openvino``, ``openvino-genai`` and ``openvino-tokenizers``, which
sit in the main environment.

The IR lands next to the safetensors copy:
``model_cache_dir()/text/<name>/openvino-int8``, with a marker naming the
copy it came from and the exporter's pins, so a new copy or new pins export
again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from generation.config import REPO_ROOT, model_cache_dir, var_dir
from generation.errors import GenerationError

EXPORT_REQUIREMENTS = REPO_ROOT / "requirements-openvino-export.txt"
# Installed without its dependencies: it lists torchvision, whose wheel for this torch fails to
# load its operators, and transformers then refuses to import at all. Exporting a causal LM never
# uses torchvision; the file above lists every dependency the export does use.
EXPORTER = "optimum-intel==2.2.0"
IR_FOLDER = "openvino-int8"
_MARKER = "atelier-export.json"
_lock = threading.Lock()


def openvino_ir_dir(name: str) -> Path:
    return model_cache_dir() / "text" / name / IR_FOLDER


def openvino_ir_ready(name: str) -> bool:
    """Whether a complete IR of ``name`` is in the model cache (checks files only)."""
    folder = openvino_ir_dir(name)
    return (folder / _MARKER).is_file() and (folder / "openvino_model.xml").is_file()


def export_venv_dir() -> Path:
    """``ATELIER_EXPORT_VENV``, default ``var/venvs/openvino-export``."""
    return Path(os.environ.get("ATELIER_EXPORT_VENV", var_dir() / "venvs" / "openvino-export")).resolve()


def _pins_digest() -> str:
    return hashlib.sha256(EXPORT_REQUIREMENTS.read_bytes() + EXPORTER.encode()).hexdigest()[:16]


def ensure_export_venv() -> Path:
    """The exporter's python, creating its environment first when it is missing or its pins changed."""
    venv = export_venv_dir()
    python = venv / "bin" / "python"
    stamp = venv / ".atelier-pins"
    digest = _pins_digest()
    if python.is_file() and stamp.is_file() and stamp.read_text() == digest:
        return python
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    base = getattr(sys, "_base_executable", sys.executable)
    _run([base, "-m", "venv", str(venv)], "create the exporter's environment")
    _run(
        [str(python), "-m", "pip", "install", "--quiet", "-r", str(EXPORT_REQUIREMENTS)],
        "install the exporter's pinned packages",
    )
    _run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", EXPORTER], f"install {EXPORTER}")
    stamp.write_text(digest)
    return python


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-15:]
        raise GenerationError(f"could not {what}: exit {result.returncode}\n" + "\n".join(tail))


def _source_identity(source: Path) -> dict[str, object]:
    """What the IR was made from: the weights' size and time, and the GGUF's (not its path,
    which differs between checkouts that share one model cache)."""
    weights = source / "model.safetensors"
    identity: dict[str, object] = {}
    if weights.is_file():
        identity["weights_size"] = weights.stat().st_size
    try:
        marker = json.loads((source / "atelier-source.json").read_text())
        identity.update({k: v for k, v in marker.items() if k != "gguf"})
    except (OSError, ValueError):
        identity["folder"] = str(source)
    return identity


def prepare_openvino_model(name: str, source: Path) -> Path:
    """Export ``source`` (a transformers folder of model ``name``) to int8 IR once; return the IR folder.

    Idempotent: when the marker matches ``source`` and the exporter's pins,
    returns at once. Otherwise builds the exporter's environment if needed
    (a few minutes, once), exports into a temporary folder and renames it
    into place, so a reader never sees half an IR. Raises
    ``GenerationError`` when the environment or the export fails.
    """
    target = openvino_ir_dir(name)
    stamp = {"source": _source_identity(source), "pins": _pins_digest()}
    with _lock:
        try:
            if json.loads((target / _MARKER).read_text()) == stamp:
                return target
        except (OSError, ValueError):
            pass
        python = ensure_export_venv()
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{IR_FOLDER}-", dir=target.parent))
        try:
            _run(
                [
                    str(python), "-m", "optimum.commands.optimum_cli", "export", "openvino",
                    "--model", str(source), "--task", "text-generation-with-past",
                    "--weight-format", "int8", str(staging),
                ],
                f"export text model {name!r} to OpenVINO IR",
            )  # fmt: skip
            if not (staging / "openvino_model.xml").is_file():
                raise GenerationError(f"the OpenVINO export of {name!r} wrote no openvino_model.xml")
            (staging / _MARKER).write_text(json.dumps(stamp))
            staging.chmod(0o755)
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target
