"""Review test helpers and fixtures (a module, so other test packages can use them too): images made
through the studio's services, and a second member."""
from __future__ import annotations

from typing import Any

import pytest

from tests.factories import MembershipFactory, UserFactory
from tests.helpers import fake_result, tiny_request
from webapp.studio import services as studio_services
from webapp.studio.models import Asset, Job
from webapp.workspaces.models import Membership, Role


def finish_job(job: Job, *, colour: str = "red") -> Asset:
    """Run ``job`` as a worker would, with a plain-colour image instead of the engine's."""
    started = studio_services.job_start(job_id=job.pk, worker="w1")
    assert started is not None
    return studio_services.job_complete(job=started, result=fake_result(started, colours=(colour,))).assets.get()


@pytest.fixture
def make_image(no_enqueue):
    def factory(*, project, author, **overrides: Any) -> Asset:
        job = studio_services.job_create(project=project, actor=membership(author, project),
                                         request=tiny_request(**overrides))
        return finish_job(job)

    return factory


@pytest.fixture
def image(make_image, project, bob) -> Asset:
    """A 32 by 32 image that bob made."""
    return make_image(project=project, author=bob)


@pytest.fixture
def dave(team):
    user = UserFactory(username="dave")
    MembershipFactory(team=team, user=user, role=Role.MEMBER)
    return user


def membership(user, project) -> Membership:
    return Membership.objects.select_related("team", "user").get(team_id=project.team_id, user=user)
