"""Helpers for the attack tests (the socket helpers live in ``tests.helpers``)."""
from __future__ import annotations


def mship(user, where):
    """``user``'s membership of the team that owns ``where`` (a project or a conversation)."""
    from webapp.workspaces.models import Membership

    project = getattr(where, "project", where)
    return Membership.objects.select_related("team", "user").get(team_id=project.team_id, user=user)
