from __future__ import annotations

import factory

from webapp.accounts.models import User
from webapp.workspaces.models import Membership, Project, Role, Team

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password(PASSWORD)


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    team = factory.SubFactory(TeamFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.MEMBER


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    team = factory.SubFactory(TeamFactory)
    name = factory.Sequence(lambda n: f"Project {n}")


def membership_of(user, team=None):
    """The persona's membership (of ``team``, or of their only team): what write services take."""
    from webapp.workspaces.models import Membership

    memberships = Membership.objects.select_related("team", "user").filter(user=user)
    return memberships.get(team=team) if team is not None else memberships.get()


def member_make(team, username: str, role: str):
    """A new user ``username`` with ``role`` in ``team``."""
    user = UserFactory(username=username)
    MembershipFactory(team=team, user=user, role=role)
    return user
