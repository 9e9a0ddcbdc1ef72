"""The converted-model cache is keyed by the GGUF it came from."""
from __future__ import annotations

from pathlib import Path

from generation.text.loading import gguf_fingerprint


def test_a_gguf_reached_through_a_symlink_has_the_same_fingerprint(tmp_path: Path) -> None:
    real = tmp_path / "env" / "model.gguf"
    real.parent.mkdir()
    real.write_bytes(b"GGUF")
    (tmp_path / "link").symlink_to(real.parent)

    assert gguf_fingerprint(tmp_path / "link" / "model.gguf") == gguf_fingerprint(real)


def test_another_gguf_has_another_fingerprint(tmp_path: Path) -> None:
    first, second = tmp_path / "a.gguf", tmp_path / "b.gguf"
    first.write_bytes(b"GGUF")
    second.write_bytes(b"GGUF")

    assert gguf_fingerprint(first) != gguf_fingerprint(second)
