"""Template fixtures: alice's chat and image templates in the "Launch" project."""
from __future__ import annotations

import pytest

from webapp.prompt_templates import services
from webapp.workspaces.models import Membership

CHAT_BODY = "Write {{count|number:1..5|default:2}} {{tone|select:formal,casual|default:formal}} lines about {{topic}}."


def membership(user, project) -> Membership:
    return Membership.objects.get(user=user, team=project.team)


@pytest.fixture
def chat_template(project, alice):
    return services.template_create(
        actor=membership(alice, project), project=project, name="Lines", command="lines", kind="chat",
        body=CHAT_BODY, settings={"temperature": 0.5, "strategy": "sample"},
    )


@pytest.fixture
def image_template(project, alice):
    return services.template_create(
        actor=membership(alice, project), project=project, name="Watercolour", command="watercolour", kind="image",
        body="{prompt}, watercolour, {{mood|select:calm,wild|default:calm}}", settings={"steps": 4, "width": 32, "height": 32},
    )
