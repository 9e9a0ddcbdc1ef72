"""Reads. A template is reached through a project the user belongs to: its own templates,
and those of the same team shared team-wide. Outsiders get 404."""
from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from datetime import date
from itertools import zip_longest
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet
from django.http import Http404

from webapp.prompt_templates.models import (
    OutputKind,
    PromptTemplate,
    TemplateKind,
    TemplateUse,
    TemplateVersion,
)
from webapp.prompt_templates.outputs import OutputView, describe_outputs
from webapp.prompt_templates.pinned import CHAT_KEYS, IMAGE_KEYS, settings_as_fields
from webapp.prompt_templates.uses import MAX_VALUE_CHARS, TemplateUseRequest
from webapp.prompt_templates.variables import ParsedBody, parse_body, render_body
from webapp.workspaces.models import Project
from webapp.workspaces.selectors import project_get_for_member

EXPORT_FORMAT = "atelier-templates"


def _visible(project: Project) -> Q:
    return Q(project=project) | Q(project__team_id=project.team_id, shared_with_team=True)


def template_list_for_project(*, project: Project, kind: str | None = None, query: str = "") -> QuerySet[PromptTemplate]:
    """The templates a project offers (its own and the team's shared ones), by command."""
    templates = PromptTemplate.objects.filter(_visible(project)).select_related(
        "project", "published_version", "created_by"
    )
    if kind:
        templates = templates.filter(kind=kind)
    if query:
        templates = templates.filter(Q(command__startswith=query.lstrip("/")) | Q(name__icontains=query.lstrip("/")))
    return templates.order_by("command", "id")


def template_get_for_member(*, user: Any, project_id: int, template_id: int) -> PromptTemplate:
    """A template the project offers, with ``template.viewing_project`` (membership set); 404 otherwise."""
    project = project_get_for_member(user=user, project_id=project_id)
    try:
        template = PromptTemplate.objects.select_related("project", "published_version").get(
            _visible(project), pk=template_id
        )
    except (PromptTemplate.DoesNotExist, ValueError, TypeError):
        raise Http404("No such template") from None
    template.viewing_project = project  # type: ignore[attr-defined]
    return template


def version_get(*, template: PromptTemplate, number: int) -> TemplateVersion:
    try:
        version = template.versions.select_related("saved_by").get(number=number)
    except (TemplateVersion.DoesNotExist, ValueError, TypeError):
        raise Http404("No such version") from None
    version.template = template
    return version


def version_list_with_usage(*, template: PromptTemplate) -> list[TemplateVersion]:
    """Every version, newest first, each with ``use_count``."""
    versions: list[TemplateVersion] = list(
        template.versions.select_related("saved_by").annotate(use_count=Count("uses")).order_by("-number")
    )
    for version in versions:
        version.template = template
    return versions


@dataclass(frozen=True)
class UseView:
    use: TemplateUse
    output: OutputView | None


def version_outputs(*, version: TemplateVersion, project: Project, limit: int = 24) -> list[UseView]:
    """What a version made in ``project``, newest first, with labels and thumbnails from chat and studio."""
    uses = list(version.uses.filter(project=project).select_related("user").order_by("-created_at", "-id")[:limit])
    views: dict[tuple[str, int], OutputView] = {}
    for kind in OutputKind.values:
        ids = [use.output_id for use in uses if use.output_kind == kind]
        if ids:
            views.update({(kind, key): view for key, view in describe_outputs(kind, project_id=project.pk, ids=ids).items()})
    return [UseView(use=use, output=views.get((use.output_kind, use.output_id))) for use in uses]


def template_use_for_output(*, output_kind: str, output_id: int, project: Project) -> TemplateUse | None:
    """The template use that made this reply or job, for its lineage; None when none did."""
    return (
        TemplateUse.objects.filter(output_kind=output_kind, output_id=output_id, project=project)
        .select_related("version__template")
        .first()
    )


def template_uses_by_output(*, output_kind: str, output_ids: list[int], project: Project) -> dict[int, TemplateUse]:
    uses = TemplateUse.objects.filter(output_kind=output_kind, output_id__in=output_ids, project=project)
    return {use.output_id: use for use in uses.select_related("version__template")}


# --- Variables, forms and rendering ------------------------------------------------


def version_parsed(*, version: TemplateVersion) -> ParsedBody:
    return parse_body(version.body, image=version.template.kind == TemplateKind.IMAGE)


@dataclass(frozen=True)
class Fill:
    """What using a version puts in the composer or studio form."""

    fields: dict[str, Any]
    template_use: str  # the hidden field's value: {"version": id, "values": {...}}


def version_fill(*, version: TemplateVersion, values: dict[str, str], user: Any, project: Project,
                 prompt: str | None = None, today: date | None = None) -> Fill:
    """Render the body with ``values`` and collect the pinned settings as form fields.

    Raises ``variables.VariableValueError`` naming each bad variable.
    """
    template = version.template
    parsed = version_parsed(version=version)
    builtins = {"date": (today or date.today()).isoformat(), "user": user.get_username(), "project": project.name}
    is_image = template.kind == TemplateKind.IMAGE
    text = render_body(parsed, values=values, builtins=builtins, prompt=(prompt or "") if is_image else None)
    fields = settings_as_fields(kind=template.kind, settings=version.settings)
    fields["prompt" if is_image else "text"] = text
    kept = {variable.name: values.get(variable.name, "") for variable in parsed.variables}
    if is_image:
        kept["prompt"] = prompt or ""
    return Fill(fields=fields, template_use=json.dumps({"version": version.pk, "values": kept}))


def template_use_request_parse(*, raw: str, project: Project, kind: str) -> TemplateUseRequest | None:
    """The composer's or studio form's hidden template field, checked; None when empty.

    The version must belong to a ``kind`` template this project offers.
    Raises ValidationError (its message names the template field) otherwise.
    """
    if not raw or not raw.strip():
        return None
    # Not keyed by field: the hidden field has no place of its own on the page.
    error = ValidationError("Template: the template data is not valid; pick the template again.")
    try:
        data = json.loads(raw)
        version_id = int(data["version"])
        values = data.get("values") or {}
    except (ValueError, TypeError, KeyError):
        raise error from None
    if not isinstance(values, dict) or len(values) > 60:
        raise error
    if not all(isinstance(k, str) and isinstance(v, str) and len(v) <= MAX_VALUE_CHARS for k, v in values.items()):
        raise error
    version = (
        TemplateVersion.objects.select_related("template")
        .filter(_prefixed_visible(project), template__kind=kind)
        .filter(pk=version_id)
        .first()
    )
    if version is None:
        raise error
    known = {variable.name for variable in version_parsed(version=version).variables}
    if kind == TemplateKind.IMAGE:
        known.add("prompt")
    if not set(values) <= known:
        raise error
    return TemplateUseRequest(version=version, values=values)


def _prefixed_visible(project: Project) -> Q:
    return Q(template__project=project) | Q(template__project__team_id=project.team_id, template__shared_with_team=True)


def template_initial_from_prompt(*, record: Any) -> dict[str, Any]:
    """A new template's fields from a prompt-history record: its text and the settings it ran with."""
    params = dict(record.params or {})
    if record.kind == "image":
        settings = {key: params[key] for key in IMAGE_KEYS if params.get(key) not in (None, "")}
        if record.model_name:
            settings["model"] = record.model_name
    else:
        settings = {key: params[key] for key in CHAT_KEYS if params.get(key) not in (None, "", [])}
        if record.model_name:
            settings["model"] = record.model_name
    return {"kind": record.kind, "body": record.text, "settings": settings}


# --- Diff and export ---------------------------------------------------------------


@dataclass(frozen=True)
class DiffRow:
    left: str | None
    right: str | None
    tag: str  # equal, replace, delete, insert


@dataclass(frozen=True)
class SettingRow:
    key: str
    left: Any
    right: Any

    @property
    def changed(self) -> bool:
        return self.left != self.right


def text_diff(left: str, right: str) -> list[DiffRow]:
    """Side-by-side rows of two texts, line by line (difflib's opcodes)."""
    a, b = left.splitlines(), right.splitlines()
    rows: list[DiffRow] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        for la, lb in zip_longest(a[i1:i2], b[j1:j2]):
            rows.append(DiffRow(left=la, right=lb, tag=tag if tag != "replace" or (la and lb) else
                                ("delete" if lb is None else "insert")))
    return rows


@dataclass(frozen=True)
class VersionDiff:
    left: TemplateVersion
    right: TemplateVersion
    body: list[DiffRow]
    settings: list[SettingRow]

    @property
    def changed(self) -> bool:
        return any(row.tag != "equal" for row in self.body) or any(row.changed for row in self.settings)


def version_diff(*, left: TemplateVersion, right: TemplateVersion) -> VersionDiff:
    keys = sorted(set(left.settings) | set(right.settings))
    settings = [SettingRow(key=key, left=left.settings.get(key), right=right.settings.get(key)) for key in keys]
    return VersionDiff(left=left, right=right, body=text_diff(left.body, right.body), settings=settings)


def templates_export(*, project: Project, published_only: bool = False) -> dict[str, Any]:
    """The project's own templates as JSON-safe data (``services.templates_import`` reads it)."""
    templates = []
    for template in PromptTemplate.objects.filter(project=project).select_related("published_version").order_by("command"):
        versions = template.versions.select_related("saved_by").order_by("number")
        if published_only:
            versions = versions.filter(id=template.published_version_id or 0)
        templates.append({
            "name": template.name,
            "description": template.description,
            "command": template.command,
            "kind": template.kind,
            "shared_with_team": template.shared_with_team,
            "published": template.published_version.number if template.published_version else None,
            "versions": [
                {"number": v.number, "body": v.body, "settings": v.settings, "note": v.note,
                 "saved_by": v.saved_by.get_username() if v.saved_by else None, "saved_at": v.saved_at.isoformat()}
                for v in versions
            ],
        })
    return {"format": EXPORT_FORMAT, "version": 1, "project": project.name, "published_only": published_only,
            "templates": templates}
