"""The one permission gate: what each role of a team may do, in one table, and one function that enforces it.

Selectors decide what a member may *see* (outsiders get 404). This module
decides what a member may *do*: every write service calls
``membership_require(actor=..., action=...)`` before it writes, and nothing
else checks roles (views and consumers call the selector, then the service;
Django turns the PermissionDenied into a 403). Pages and templates that only
show or hide a button ask ``membership_may`` (the same table), so what they
offer cannot drift from what the service allows.

A cell of the table is ``ALL`` (the role may do it to anything in the team),
``OWN`` (only to what the actor made: pass ``owner_id``) or absent (never).
The README prints this table (``python manage.py permissions_table``), and a
test checks that the two match.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import PermissionDenied

from webapp.workspaces.models import Membership, Role

ALL = "all"
OWN = "own"

# The columns of the README's table, most powerful first.
ROLE_ORDER = (Role.OWNER, Role.ADMIN, Role.MEMBER, Role.VIEWER)


@dataclass(frozen=True)
class Rule:
    """Who may do one action. ``what`` completes "Viewers cannot ..." and "Members can only ... that they
    made"; ``grants`` maps a role to ALL or OWN (roles it does not name may not)."""

    what: str
    grants: dict[str, str] = field(default_factory=dict)


def _rule(what: str, owner: str = "", admin: str = "", member: str = "", viewer: str = "") -> Rule:
    grants = {str(role): grant for role, grant in zip(ROLE_ORDER, (owner, admin, member, viewer), strict=True) if grant}
    return Rule(what=what, grants=grants)


# The one table. An action is named ``<area>.<verb>``; ``what`` is how the refusal and the README say it.
PERMISSIONS: dict[str, Rule] = {
    # Teams (webapp.workspaces). Anyone may leave a team; the last owner may not (a rule of the data, not of roles).
    "team.manage_members": _rule("invite people, change roles or remove members", ALL, ALL),
    "team.manage_owners": _rule("grant or take away the owner role, or invite or remove an owner", ALL),
    "audit.read": _rule("read the team's audit trail", ALL, ALL),
    "project.create": _rule("create projects", ALL, ALL, ALL),
    "project.update": _rule("change a project's name and description", ALL, ALL, ALL),
    "project.delete": _rule("delete projects", ALL, ALL),
    # Chat: the author of a conversation (or of a reply) is who started (or asked for) it.
    "chat.send": _rule("start conversations, send messages or regenerate replies", ALL, ALL, ALL),
    "chat.edit": _rule("rename conversations or change their settings", ALL, ALL, ALL),
    "chat.resend": _rule("edit and resend prompts", OWN, OWN, OWN),
    "chat.delete": _rule("delete conversations", ALL, ALL, OWN),
    "chat.stop": _rule("stop replies", ALL, ALL, OWN),
    # Studio.
    "studio.create": _rule("generate images (new, re-run, vary)", ALL, ALL, ALL),
    "studio.stop": _rule("stop image jobs", OWN, OWN, OWN),
    # Prompt templates.
    "templates.write": _rule("create, change or import templates", ALL, ALL, ALL),
    "templates.publish": _rule("publish template versions", ALL, ALL, ALL),
    "templates.delete": _rule("delete templates", ALL, ALL, ALL),
    # Reviews.
    "reviews.request": _rule("ask for review", ALL, ALL, ALL),
    "reviews.decide": _rule("give verdicts", ALL, ALL, ALL),
    "reviews.comment": _rule("comment on reviews", ALL, ALL, ALL, ALL),
    "reviews.resolve": _rule("resolve or reopen comments", ALL, ALL, ALL, OWN),
    "reviews.withdraw": _rule("withdraw review requests", ALL, ALL, OWN, OWN),
    "reviews.iterate": _rule("make a new version from a review", ALL, ALL, ALL),
    "exports.create": _rule("export approved images", ALL, ALL, ALL, ALL),
    # API keys and /v1.
    "keys.create": _rule("make API keys of their own", ALL, ALL, ALL, ALL),
    "keys.revoke": _rule("revoke API keys", ALL, ALL, OWN, OWN),
    "api.generate": _rule("generate through the API", ALL, ALL, ALL),
    # Accounts (issue 20).
    "team.require_two_factor": _rule("require two-factor of the team's members", ALL),
    # Usage and budgets (webapp.usage): members see their own use only.
    "usage.read": _rule("see the team's usage", ALL, ALL, OWN, OWN),
    "usage.budgets": _rule("set budgets and the team's time zone", ALL, ALL),
    # Project knowledge: documents (webapp.knowledge).
    "knowledge.add": _rule("add or replace documents", ALL, ALL, ALL),
    "knowledge.delete": _rule("delete documents or cancel their indexing", ALL, ALL, OWN),
}


def _rule_for(action: str) -> Rule:
    try:
        return PERMISSIONS[action]
    except KeyError:
        raise LookupError(f"Unknown action {action!r}: add it to webapp.workspaces.permissions.PERMISSIONS.") from None


def membership_may(*, actor: Membership | None, action: str, project: Any = None, owner_id: int | None = None) -> bool:
    """Whether ``actor`` may do ``action`` (to ``project``'s content, to something ``owner_id`` made)."""
    rule = _rule_for(action)
    if actor is None or (project is not None and actor.team_id != project.team_id):
        return False
    grant = rule.grants.get(actor.role)
    return grant == ALL or (grant == OWN and owner_id is not None and owner_id == actor.user_id)


def membership_require(*, actor: Membership, action: str, project: Any = None, owner_id: int | None = None) -> None:
    """PermissionDenied (a 403) unless ``actor`` may do ``action``; the message says why.

    ``project``: the write touches this project's content, so the actor must
    belong to its team. ``owner_id``: the user who made the object, for the
    actions that some roles may do only to their own.
    """
    if membership_may(actor=actor, action=action, project=project, owner_id=owner_id):
        return
    if project is not None and actor.team_id != project.team_id:
        raise PermissionDenied("You are not a member of this project's team.")
    rule = _rule_for(action)
    plural = f"{Role(actor.role).label}s"
    if rule.grants.get(actor.role) == OWN:
        raise PermissionDenied(f"{plural} can only {rule.what} that they made.")
    raise PermissionDenied(f"{plural} cannot {rule.what}.")


def roles_allowed(action: str) -> list[str]:
    """The roles that may do ``action`` to anything (for queries, e.g. who may give a verdict)."""
    return [role for role, grant in _rule_for(action).grants.items() if grant == ALL]


def permissions_table_markdown() -> str:
    """The table as Markdown, as the README prints it (a test checks they match)."""
    lines = [
        "| Action | What | " + " | ".join(Role(role).label for role in ROLE_ORDER) + " |",
        "|---|---|" + "---|" * len(ROLE_ORDER),
    ]
    cells = {ALL: "yes", OWN: "own"}
    for action, rule in PERMISSIONS.items():
        row = [cells.get(rule.grants.get(role, ""), "no") for role in ROLE_ORDER]
        lines.append(f"| `{action}` | {rule.what} | " + " | ".join(row) + " |")
    lines.append("")
    lines.append("*yes*: anything in the team's projects; *own*: only what they made; *no*: never.")
    return "\n".join(lines) + "\n"
