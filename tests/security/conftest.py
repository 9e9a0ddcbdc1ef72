from __future__ import annotations

import pytest

from tests.security.helpers import mship
from webapp.chat import services
from webapp.chat.params import ReplySettings, default_model_name, default_params


@pytest.fixture
def conversation(project, alice):
    reply_settings = ReplySettings(model_name=default_model_name(), params={**default_params(), "max_new_tokens": 8})
    return services.conversation_create(project=project, membership=mship(alice, project), reply_settings=reply_settings)


def short_settings(**params) -> ReplySettings:
    return ReplySettings(model_name=default_model_name(), params={**default_params(), "max_new_tokens": 8, **params})
