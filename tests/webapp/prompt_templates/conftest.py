"""Template fixtures: alice's chat and image templates in the "Launch" project."""
from __future__ import annotations

import pytest

from tests.factories import membership_of
from tests.helpers import CHAT_BODY
from webapp.prompt_templates import services


@pytest.fixture
def chat_template(project, alice):
    return services.template_create(
        actor=membership_of(alice, project.team), project=project, name="Lines", command="lines", kind="chat",
        body=CHAT_BODY, settings={"temperature": 0.5, "strategy": "sample"},
    )


@pytest.fixture
def image_template(project, alice):
    return services.template_create(
        actor=membership_of(alice, project.team), project=project, name="Watercolour", command="watercolour", kind="image",
        body="{prompt}, watercolour, {{mood|select:calm,wild|default:calm}}", settings={"steps": 4, "width": 32, "height": 32},
    )
