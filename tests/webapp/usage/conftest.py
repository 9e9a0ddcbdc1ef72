"""Usage fixtures: the tiny in-code chat model (about 1 ms a token), as chat's tests build it."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

TINY = "tiny-chat"


@pytest.fixture(scope="session")
def tiny_model_folder() -> Path:
    from generation.text.testing import build_tiny_chat_model

    folder = Path(settings.VAR_DIR) / "tiny-chat-model"
    if not (folder / "config.json").exists():
        build_tiny_chat_model(folder, seed=0, context_length=512)
    return folder


@pytest.fixture
def tiny_model(tiny_model_folder, monkeypatch) -> str:
    from generation.text.testing import tiny_model_entry

    monkeypatch.setenv("ATELIER_TEXT_MODELS", tiny_model_entry(TINY, tiny_model_folder, context_length=512))
    return TINY


@pytest.fixture(autouse=True)
def _fresh_time_zones():
    """Each process keeps a team's time zone for a minute; test databases reuse team ids, so start clean."""
    from webapp.usage.selectors import _time_zones

    _time_zones.clear()
    yield
    _time_zones.clear()
