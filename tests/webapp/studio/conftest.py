"""Studio fixtures: jobs made through the service (helpers live in ``tests.helpers``)."""
from __future__ import annotations

from typing import Any

import pytest

from tests.factories import membership_of
from tests.helpers import tiny_request
from webapp.studio import services
from webapp.studio.models import Job


@pytest.fixture
def make_job(no_enqueue):
    def factory(*, project, author, **overrides: Any) -> Job:
        return services.job_create(project=project, actor=membership_of(author), request=tiny_request(**overrides))

    return factory
