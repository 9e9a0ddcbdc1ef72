"""The one permission gate: its table, its refusals, the README's copy of it, and that nothing else checks roles."""
from __future__ import annotations

import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command

from tests.factories import membership_of
from webapp.workspaces.models import Role
from webapp.workspaces.permissions import (
    ALL,
    OWN,
    PERMISSIONS,
    membership_may,
    membership_require,
    permissions_table_markdown,
    roles_allowed,
)

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[3]
README_TABLE = re.compile(r"<!-- permissions_table:[^\n]*-->\n(.*?)<!-- /permissions_table -->", re.S)


def test_the_readme_prints_exactly_the_table():
    found = README_TABLE.findall((REPO / "README.md").read_text())
    assert len(found) == 1, "README.md needs one generated permissions table (python manage.py permissions_table)"
    assert found[0].strip("\n") + "\n" == permissions_table_markdown(), (
        "README.md's Permissions table differs from webapp/workspaces/permissions.py: "
        "paste the output of `python manage.py permissions_table`"
    )


def test_the_command_prints_the_table():
    out = StringIO()
    call_command("permissions_table", stdout=out)
    assert out.getvalue() == permissions_table_markdown()
    assert "| `chat.delete` | delete conversations | yes | yes | own | no |" in out.getvalue()


def test_every_cell_is_all_or_own_and_every_role_is_a_role():
    for action, rule in PERMISSIONS.items():
        assert re.fullmatch(r"[a-z_]+\.[a-z_]+", action), action
        assert set(rule.grants) <= set(Role.values), action
        assert set(rule.grants.values()) <= {ALL, OWN}, action


def test_a_viewer_is_refused_a_write_with_a_reason(project, carol):
    with pytest.raises(PermissionDenied, match="Viewers cannot start conversations"):
        membership_require(actor=membership_of(carol), action="chat.send", project=project)


def test_own_means_what_the_actor_made(project, alice, bob):
    member = membership_of(bob)
    membership_require(actor=member, action="chat.delete", project=project, owner_id=bob.pk)
    with pytest.raises(PermissionDenied, match="Members can only delete conversations that they made"):
        membership_require(actor=member, action="chat.delete", project=project, owner_id=alice.pk)
    with pytest.raises(PermissionDenied):  # no owner given: only an "all" grant passes
        membership_require(actor=member, action="chat.delete", project=project)
    membership_require(actor=membership_of(alice), action="chat.delete", project=project, owner_id=bob.pk)


def test_a_member_of_another_team_is_refused_even_with_the_role(project, other_project, alice):
    with pytest.raises(PermissionDenied, match="not a member of this project's team"):
        membership_require(actor=membership_of(alice), action="chat.send", project=other_project)
    assert not membership_may(actor=None, action="chat.send")


def test_an_unknown_action_is_a_programming_error(team, alice):
    with pytest.raises(LookupError, match=r"chat\.sned"):
        membership_require(actor=membership_of(alice), action="chat.sned")


def test_roles_allowed_lists_the_all_grants_only():
    assert set(roles_allowed("reviews.decide")) == {Role.OWNER, Role.MEMBER, Role.ADMIN}
    assert set(roles_allowed("chat.delete")) == {Role.OWNER, Role.ADMIN}


def _python_sources() -> dict[Path, str]:
    return {path: path.read_text() for path in (REPO / "webapp").rglob("*.py") if "migrations" not in path.parts}


def test_every_action_of_the_table_is_asked_for_somewhere():
    code = "\n".join(text for path, text in _python_sources().items() if path.name != "permissions.py")
    unused = [action for action in PERMISSIONS if f'"{action}"' not in code]
    assert not unused, f"actions no code asks for (remove them or use them): {unused}"


def test_no_module_checks_roles_by_itself():
    """Services, selectors and views ask the gate; ``can_write``/``can_manage``/``has_role`` are for templates."""
    allowed = {"models.py"}  # where the template helpers are defined
    offenders = [
        f"{path.relative_to(REPO)}: {name}"
        for path, text in _python_sources().items()
        if path.name not in allowed
        for name in (".can_write", ".can_manage", ".has_role(", "membership_require_write", "require_write", "minimum_role")
        if name in text
    ]
    assert not offenders, offenders
