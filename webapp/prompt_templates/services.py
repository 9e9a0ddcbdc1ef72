"""Writes: templates, versions, publishing, import, and the record of a use.

Write services take the actor's ``Membership`` and ask the one gate
(``webapp.workspaces.permissions``): members and above write, viewers only
read (PermissionDenied). Bad input raises
Django's ValidationError keyed by the field; every service is atomic, so a
refused write leaves nothing behind.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q

from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record
from webapp.prompt_templates.models import (
    COMMAND_PATTERN,
    OutputKind,
    PromptTemplate,
    TemplateKind,
    TemplateUse,
    TemplateVersion,
)
from webapp.prompt_templates.pinned import settings_clean
from webapp.prompt_templates.uses import TemplateUseRequest
from webapp.prompt_templates.variables import TemplateSyntaxError, parse_body
from webapp.workspaces.models import Membership, Project
from webapp.workspaces.permissions import membership_require

MAX_NOTE_CHARS = 300


def body_check(*, body: str, kind: str) -> None:
    """ValidationError({"body": "line L, column C: ..."}) unless the body parses."""
    if not body.strip():
        raise ValidationError({"body": "A template needs a body."})
    try:
        parse_body(body, image=kind == TemplateKind.IMAGE)
    except TemplateSyntaxError as exc:
        raise ValidationError({"body": str(exc)}) from None


def _command_format(command: str) -> str:
    command = command.strip().lstrip("/")
    if not re.match(COMMAND_PATTERN, command) or len(command) > 40:
        raise ValidationError({"command": "Use up to 40 lowercase letters, digits and dashes, as in summarize-notes."})
    return command


def _command_taken(*, project: Project, command: str, exclude: PromptTemplate | None = None, shared: bool) -> bool:
    # Unique among what the project offers: its own templates and those shared team-wide;
    # a template being shared must not collide with any project of the team either.
    clash = Q(project=project) | Q(project__team_id=project.team_id, shared_with_team=True)
    if shared:
        clash |= Q(project__team_id=project.team_id)
    others = PromptTemplate.objects.filter(clash, command=command)
    if exclude is not None:
        others = others.exclude(pk=exclude.pk)
    return others.exists()


def _command_check(*, project: Project, command: str, exclude: PromptTemplate | None = None, shared: bool) -> str:
    command = _command_format(command)
    if _command_taken(project=project, command=command, exclude=exclude, shared=shared):
        raise ValidationError({"command": f"/{command} is already taken in this project or shared by the team."})
    return command


def _meta_check(*, name: str, description: str, note: str) -> None:
    if not name.strip() or len(name) > 100:
        raise ValidationError({"name": "A name of 1 to 100 characters is needed."})
    if len(description) > 2000:
        raise ValidationError({"description": "At most 2000 characters."})
    if len(note) > MAX_NOTE_CHARS:
        raise ValidationError({"note": f"At most {MAX_NOTE_CHARS} characters."})


def _version_create(*, template: PromptTemplate, body: str, settings: dict[str, Any], note: str, user: Any) -> TemplateVersion:
    last = template.versions.order_by("-number").values_list("number", flat=True).first() or 0
    return TemplateVersion.objects.create(
        template=template, number=last + 1, body=body, settings=settings, note=note.strip(), saved_by=user
    )


def _published_record(*, actor: Membership, template: PromptTemplate, version: TemplateVersion) -> None:
    """The audit entry of a version made the one offered (the project's activity feed shows it)."""
    audit_record(
        actor=actor.user, team_id=template.project.team_id, project_id=template.project_id,
        action=AuditAction.TEMPLATE_PUBLISHED, object_kind="template", object_id=template.pk,
        detail={"name": template.name, "command": template.command, "version": version.number},
    )


@transaction.atomic
def template_create(
    *,
    actor: Membership,
    project: Project,
    name: str,
    command: str,
    kind: str,
    body: str,
    settings: dict[str, Any] | None = None,
    description: str = "",
    shared_with_team: bool = False,
    note: str = "",
) -> PromptTemplate:
    """A new template whose first version is published."""
    membership_require(actor=actor, action="templates.write", project=project)
    if kind not in TemplateKind.values:
        raise ValidationError({"kind": "Choose chat or image."})
    _meta_check(name=name, description=description, note=note)
    command = _command_check(project=project, command=command, shared=shared_with_team)
    body_check(body=body, kind=kind)
    pinned = settings_clean(kind=kind, settings=settings or {})
    try:
        with transaction.atomic():
            template = PromptTemplate.objects.create(
                project=project, name=name.strip(), description=description.strip(), command=command, kind=kind,
                shared_with_team=shared_with_team, created_by=actor.user,
            )
    except IntegrityError:
        raise ValidationError({"command": f"/{command} is already taken in this project."}) from None
    version = _version_create(template=template, body=body, settings=pinned, note=note or "First version", user=actor.user)
    template.published_version = version
    template.save(update_fields=["published_version"])
    _published_record(actor=actor, template=template, version=version)
    return template


@transaction.atomic
def template_save(
    *,
    actor: Membership,
    template: PromptTemplate,
    body: str,
    settings: dict[str, Any] | None = None,
    note: str = "",
    name: str | None = None,
    description: str | None = None,
    command: str | None = None,
    shared_with_team: bool | None = None,
) -> TemplateVersion | None:
    """Save an edit: the name, description, command and sharing change in place; a changed
    body or settings adds a new (unpublished) version, returned; otherwise None."""
    membership_require(actor=actor, action="templates.write", project=template.project)
    template = PromptTemplate.objects.select_for_update().select_related("project").get(pk=template.pk)
    name = template.name if name is None else name
    description = template.description if description is None else description
    shared = template.shared_with_team if shared_with_team is None else shared_with_team
    _meta_check(name=name, description=description, note=note)
    command = _command_check(
        project=template.project, command=template.command if command is None else command, exclude=template,
        shared=shared,
    )
    body_check(body=body, kind=template.kind)
    pinned = settings_clean(kind=template.kind, settings=settings or {})
    template.name, template.description, template.command = name.strip(), description.strip(), command
    template.shared_with_team = shared
    template.save(update_fields=["name", "description", "command", "shared_with_team", "updated_at"])
    latest = template.versions.order_by("-number").first()
    if latest is not None and latest.body == body and latest.settings == pinned:
        return None
    return _version_create(template=template, body=body, settings=pinned, note=note, user=actor.user)


@transaction.atomic
def template_publish(*, actor: Membership, version: TemplateVersion) -> PromptTemplate:
    """Make ``version`` the one offered; publishing an older version is the rollback."""
    template = PromptTemplate.objects.select_for_update().select_related("project").get(pk=version.template_id)
    membership_require(actor=actor, action="templates.publish", project=template.project)
    template.published_version = version
    template.save(update_fields=["published_version", "updated_at"])
    _published_record(actor=actor, template=template, version=version)
    return template


@transaction.atomic
def template_delete(*, actor: Membership, template: PromptTemplate) -> None:
    """Delete the template and its versions; uses keep their copied command and number."""
    membership_require(actor=actor, action="templates.delete", project=template.project)
    PromptTemplate.objects.filter(pk=template.pk).update(published_version=None)
    template.delete()


def template_create_from_prompt(
    *, actor: Membership, project: Project, record: Any, name: str, command: str, description: str = ""
) -> PromptTemplate:
    """"Save as template": a template from a prompt-history record, its text and settings."""
    from webapp.prompt_templates.selectors import template_initial_from_prompt

    initial = template_initial_from_prompt(record=record)
    return template_create(
        actor=actor, project=project, name=name, command=command, kind=initial["kind"], body=initial["body"],
        settings=initial["settings"], description=description, note="Saved from the prompt history",
    )


# --- Import ---------------------------------------------------------------------


@dataclass(frozen=True)
class ImportPlan:
    """What an import would do: ``create`` and ``collide`` hold commands; ``errors`` the refusals."""

    create: tuple[str, ...]
    collide: tuple[str, ...]
    errors: tuple[str, ...]
    templates: tuple[dict[str, Any], ...]


# Versions are numbered 1, 2, ...; a file that nests deeper than this is no templates export.
MAX_IMPORT_VERSION = 100_000
MAX_IMPORT_DEPTH = 20


def _import_number(value: Any, field: str) -> int:
    """A version number from an import file: a whole number from 1, or a ValidationError naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_IMPORT_VERSION:
        raise ValidationError(f"{field} must be a whole number from 1 to {MAX_IMPORT_VERSION}, not {value!r:.40}")
    return value


def _json_depth_exceeds(data: Any, limit: int) -> bool:
    """Whether ``data`` (parsed JSON) nests lists and objects more than ``limit`` deep; no recursion."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > limit:
                return True
            stack.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict) else value))
    return False


def _import_entry_check(entry: Any, index: int) -> dict[str, Any]:
    where = f"template {index + 1}"
    if not isinstance(entry, dict):
        raise ValidationError(f"{where}: must be an object")
    for key in ("name", "command", "kind", "versions"):
        if key not in entry:
            raise ValidationError(f"{where}: missing {key!r}")
    kind = entry["kind"]
    if kind not in TemplateKind.values:
        raise ValidationError(f"{where}: kind must be chat or image")
    versions = entry["versions"]
    if not isinstance(versions, list) or not versions or len(versions) > 500:
        raise ValidationError(f"{where}: versions must be a list of 1 to 500")
    cleaned: list[dict[str, Any]] = []
    for position, version in enumerate(versions):
        if not isinstance(version, dict) or not isinstance(version.get("body"), str):
            raise ValidationError(f"{where}: each version needs a body")
        try:
            body_check(body=version["body"], kind=kind)
            pinned = settings_clean(kind=kind, settings=version.get("settings") or {})
        except ValidationError as exc:
            raise ValidationError(f"{where} (/{entry['command']}): {' '.join(exc.messages)}") from None
        note = str(version.get("note") or "")[:MAX_NOTE_CHARS]
        number = _import_number(version.get("number", position + 1), f"{where}: versions[{position}].number")
        if any(v["number"] == number for v in cleaned):
            raise ValidationError(f"{where}: versions[{position}].number: version {number} appears twice")
        cleaned.append({"number": number, "body": version["body"], "settings": pinned, "note": note})
    cleaned.sort(key=lambda v: v["number"])
    published = entry.get("published")
    if published is not None:
        published = _import_number(published, f"{where}: published")
    if published is not None and published not in [v["number"] for v in cleaned]:
        raise ValidationError(f"{where}: the published version {published} is not in the file")
    return {
        "name": str(entry["name"])[:100], "description": str(entry.get("description") or "")[:2000],
        "command": str(entry["command"]), "kind": kind, "shared_with_team": bool(entry.get("shared_with_team")),
        "published": published or cleaned[-1]["number"], "versions": cleaned,
    }


def templates_import_plan(*, actor: Membership, project: Project, data: Any) -> ImportPlan:
    """Read an export and say what importing it into ``project`` would create and what collides.

    Writes nothing, but is the first step of a write: PermissionDenied unless
    ``actor`` may import (``templates.write``). A malformed file (``data`` None
    when it was not JSON) gives a plan with ``errors`` only.
    """
    membership_require(actor=actor, action="templates.write", project=project)
    if _json_depth_exceeds(data, MAX_IMPORT_DEPTH):
        return ImportPlan(create=(), collide=(), templates=(),
                          errors=(f"file: nested more than {MAX_IMPORT_DEPTH} levels deep: not a templates export.",))
    if not isinstance(data, dict) or data.get("format") != "atelier-templates" or not isinstance(data.get("templates"), list):
        return ImportPlan(create=(), collide=(), errors=("This is not an Atelier templates export.",), templates=())
    create: list[str] = []
    collide: list[str] = []
    errors: list[str] = []
    entries: list[dict[str, Any]] = []
    for index, raw in enumerate(data["templates"]):
        try:
            entry = _import_entry_check(raw, index)
            entry["command"] = _command_format(entry["command"])
        except ValidationError as exc:
            errors.append(f"template {index + 1}: {' '.join(exc.messages)}" if hasattr(exc, "error_dict") else exc.messages[0])
            continue
        taken = _command_taken(project=project, command=entry["command"], shared=entry["shared_with_team"])
        if taken or entry["command"] in create:
            collide.append(entry["command"])
            continue
        create.append(entry["command"])
        entries.append(entry)
    return ImportPlan(create=tuple(create), collide=tuple(collide), errors=tuple(errors), templates=tuple(entries))


@transaction.atomic
def templates_import(*, actor: Membership, project: Project, data: Any) -> list[PromptTemplate]:
    """Create the templates that the plan would create (collisions are skipped), all or none."""
    plan = templates_import_plan(actor=actor, project=project, data=data)
    if plan.errors:
        raise ValidationError(plan.errors[0])
    created = []
    for entry in plan.templates:
        template = PromptTemplate.objects.create(
            project=project, name=entry["name"], description=entry["description"], command=entry["command"],
            kind=entry["kind"], shared_with_team=entry["shared_with_team"], created_by=actor.user,
        )
        published = None
        for version in entry["versions"]:
            saved = TemplateVersion.objects.create(
                template=template, number=version["number"], body=version["body"], settings=version["settings"],
                note=version["note"], saved_by=actor.user,
            )
            if version["number"] == entry["published"]:
                published = saved
        template.published_version = published
        template.save(update_fields=["published_version"])
        if published is not None:
            _published_record(actor=actor, template=template, version=published)
        created.append(template)
    return created


# --- Uses -----------------------------------------------------------------------


def template_use_record(
    *, use: TemplateUseRequest, project: Project, user: Any, output_kind: str, output_id: int
) -> TemplateUse:
    """Record that ``output_kind`` #``output_id`` was made from ``use.version``.

    Called by chat and studio inside the transaction that creates the reply or job.
    """
    if output_kind not in OutputKind.values:
        raise ValueError(f"unknown output kind {output_kind!r}")
    version = use.version
    return TemplateUse.objects.create(
        version=version, project=project, user=user, command=version.template.command,
        version_number=version.number, values=use.values, output_kind=output_kind, output_id=output_id,
    )
