"""Chat fixtures: a conversation in alice's project, settings with short replies, and a
tiny in-code model for tests that decode in this process (the real stack tests use the
real default model in a real worker)."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from tests.factories import membership_of
from tests.helpers import short_settings
from webapp.chat import services

TINY = "tiny-chat"


@pytest.fixture
def conversation(project, alice):
    return services.conversation_create(project=project, actor=membership_of(alice), reply_settings=short_settings())


@pytest.fixture(scope="session")
def tiny_model_folder() -> Path:
    from generation.text.testing import build_tiny_chat_model

    folder = Path(settings.VAR_DIR) / "tiny-chat-model"
    if not (folder / "config.json").exists():
        build_tiny_chat_model(folder, seed=0, context_length=512)
    return folder


@pytest.fixture
def tiny_model(tiny_model_folder, monkeypatch) -> str:
    """Registers the tiny model (about a millisecond per token) and returns its name."""
    from generation.text.testing import tiny_model_entry

    monkeypatch.setenv("ATELIER_TEXT_MODELS", tiny_model_entry(TINY, tiny_model_folder, context_length=512))
    return TINY
