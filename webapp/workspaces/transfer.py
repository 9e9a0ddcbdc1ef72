"""Move a project between installations: its rows and its media, in one archive.

What a project holds is declared by the apps themselves: an app lists its
models on its AppConfig, parents first, each with the lookup path from the
model to its project::

    class ChatConfig(AppConfig):
        project_export = [("Conversation", "project"), ("Message", "conversation__project")]

Adding an app's models to the archive is that one line. Apps are read in
``INSTALLED_APPS`` order, which is the layer order, so a row's parents in a
lower app come first. Nothing here imports a higher app.

Foreign keys (and many-to-many fields) are remapped by themselves. References
without a foreign key (a plain id, or a ``(kind, id)`` pair such as
``TemplateUse.output_kind``/``output_id``) are declared too, by whichever app
knows what they mean, as ``(model label, kind field or None, id field,
{kind: target model label})``; the maps for one pair are merged over apps::

    class ChatConfig(AppConfig):
        project_export_refs = [("prompt_templates.TemplateUse", "output_kind", "output_id", {"reply": "chat.Message"})]

On import such an id becomes the target's new id. A target that is not in
the archive (deleted, or a kind nobody declared) leaves the id empty when the
field allows it; otherwise the row is left out, with a warning. A row whose
target comes later in the archive is written after all other rows, so rows
that can't be changed once written (audit entries) still get the new id.
Extra file names kept in plain text fields are declared as
``project_export_media = [("ApprovedExport", "file")]``.

API keys are never exported: only their hashes are stored, and secrets stay
in the installation that issued them. Members make new keys after a move.

The archive (``.tar.gz``) holds ``manifest.json`` (format, the project, its
team and members, the users that rows point at, and every row as Django's
JSON serializer writes it) and ``media/<storage name>`` for every file field.
Import gives every row a new primary key and remaps the foreign keys, so a
project can land in an installation that already has rows with those ids,
and on any database Django supports (SQLite to PostgreSQL and back). Users
are matched by username; a missing one is created without a usable password.
"""
from __future__ import annotations

import datetime
import io
import json
import logging
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.core import serializers
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction

from webapp.workspaces.models import Membership, Project, Role, Team

logger = logging.getLogger(__name__)

FORMAT = 1
MANIFEST = "manifest.json"
MEDIA_PREFIX = "media/"


def export_models() -> list[tuple[type[models.Model], str]]:
    """Every (model, path to its project) that an export carries, parents first."""
    found: list[tuple[type[models.Model], str]] = []
    for config in apps.get_app_configs():
        for model_name, project_path in getattr(config, "project_export", ()):
            found.append((config.get_model(model_name), project_path))
    return found


# (model label_lower, kind field or None, id field) -> {kind: target model label_lower}
Refs = dict[tuple[str, str | None, str], dict[Any, str]]


def export_refs() -> Refs:
    """Every declared reference without a foreign key, merged over apps."""
    found: Refs = {}
    for config in apps.get_app_configs():
        for label, kind_field, id_field, kinds in getattr(config, "project_export_refs", ()):
            targets = found.setdefault((apps.get_model(label)._meta.label_lower, kind_field, id_field), {})
            targets.update({kind: apps.get_model(target)._meta.label_lower for kind, target in kinds.items()})
    return found


def _file_fields(model: type[models.Model]) -> list[models.Field]:
    declared = {
        (config.get_model(model_name), field_name)
        for config in apps.get_app_configs()
        for model_name, field_name in getattr(config, "project_export_media", ())
    }
    return [f for f in model._meta.concrete_fields
            if isinstance(f, models.FileField) or (model, f.name) in declared]


def _user_fields(model: type[models.Model]) -> list[models.ForeignKey]:
    user_model = get_user_model()
    return [f for f in model._meta.concrete_fields if isinstance(f, models.ForeignKey) and f.related_model is user_model]


class _Encoder(DjangoJSONEncoder):
    """Django's encoder, but datetimes keep their microseconds (it cuts them to milliseconds)."""

    def default(self, o: Any) -> Any:
        if isinstance(o, datetime.datetime):
            return o.isoformat()
        return super().default(o)


@dataclass
class ExportSummary:
    rows: dict[str, int] = field(default_factory=dict)
    files: int = 0
    bytes: int = 0


def project_export(*, project: Project, path: Path) -> ExportSummary:
    """Write ``project``'s rows and media to the archive at ``path``. Reads only."""
    user_model = get_user_model()
    summary = ExportSummary()
    rows: list[dict[str, Any]] = []
    media: list[str] = []
    user_ids: set[int] = {m.user_id for m in project.team.memberships.all()}
    if project.created_by_id:
        user_ids.add(project.created_by_id)
    refs = export_refs()
    user_label = user_model._meta.label_lower
    for model, project_path in export_models():
        queryset = model._default_manager.filter(**{project_path: project.pk}).order_by("pk")
        serialized = json.loads(json.dumps(serializers.serialize("python", queryset), cls=_Encoder))
        rows.extend(serialized)
        summary.rows[model._meta.label] = len(serialized)
        user_attnames = [f.name for f in _user_fields(model)]
        user_attnames += [f.name for f in model._meta.many_to_many if f.related_model is user_model]
        user_attnames += [id_field for (label, _, id_field), kinds in refs.items()
                          if label == model._meta.label_lower and set(kinds.values()) == {user_label}]
        file_names = [f.name for f in _file_fields(model)]
        for row in serialized:
            for name in user_attnames:
                value = row["fields"].get(name)
                user_ids.update(value if isinstance(value, list) else [value] if value else [])
            media.extend(row["fields"][name] for name in file_names if row["fields"].get(name))
    users = [
        {"pk": u.pk, "username": u.get_username(), "email": u.email, "first_name": u.first_name,
         "last_name": u.last_name}
        for u in user_model._default_manager.filter(pk__in=user_ids).order_by("pk")
    ]
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "exported_at": time.time(),
        "project": {"pk": project.pk, "name": project.name, "description": project.description,
                    "created_by": project.created_by_id, "created_at": project.created_at.isoformat()},
        "team": {"pk": project.team_id, "name": project.team.name,
                 "members": [{"user": m.user_id, "role": m.role} for m in project.team.memberships.all()]},
        "users": users,
        "rows": rows,
        "media": sorted(set(media)),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        data = json.dumps(manifest, indent=1).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
        for name in manifest["media"]:
            with default_storage.open(name, "rb") as fh:
                content = fh.read()
            info = tarfile.TarInfo(MEDIA_PREFIX + name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
            summary.files += 1
            summary.bytes += len(content)
    return summary


def _read_manifest(archive: tarfile.TarFile) -> dict[str, Any]:
    try:
        member = archive.extractfile(MANIFEST)
    except KeyError:
        raise ValidationError({"archive": "The archive has no manifest.json: it is not a project export."}) from None
    if member is None:
        raise ValidationError({"archive": "manifest.json is not a file."})
    manifest = json.loads(member.read())
    if manifest.get("format") != FORMAT:
        raise ValidationError({"archive": f"Unknown export format {manifest.get('format')!r} (this installation reads {FORMAT})."})
    return manifest


def _media_bytes(archive: tarfile.TarFile, name: str) -> bytes:
    # Only names listed in the manifest are read, never extracted to disk: a crafted member path can't escape.
    try:
        member = archive.extractfile(MEDIA_PREFIX + name)
    except KeyError:
        raise ValidationError({"archive": f"The file {name!r} is listed but missing from the archive."}) from None
    if member is None:
        raise ValidationError({"archive": f"The media entry {name!r} is not a file."})
    return member.read()


def _users(manifest: dict[str, Any]) -> dict[int, Any]:
    user_model = get_user_model()
    mapped: dict[int, Any] = {}
    for entry in manifest["users"]:
        user = user_model._default_manager.filter(username=entry["username"]).first()
        if user is None:
            user = user_model(username=entry["username"], email=entry.get("email", ""),
                              first_name=entry.get("first_name", ""), last_name=entry.get("last_name", ""))
            user.set_unusable_password()
            user.save()
        mapped[int(entry["pk"])] = user
    return mapped


def project_import(*, path: Path, team: Team | None = None, name: str | None = None) -> Project:
    """Create a project from the archive at ``path``, with new ids; returns it.

    Into ``team`` when given, else into a new team with the exported team's
    name and members. ``name`` overrides the project's name; a name already
    taken in the team is a ValidationError naming ``name``. All rows are
    written in one transaction; files stored before a failure are deleted.
    """
    stored: list[str] = []
    try:
        with tarfile.open(path, "r:gz") as archive, transaction.atomic():
            manifest = _read_manifest(archive)
            users = _users(manifest)
            if team is None:
                team = Team.objects.create(name=manifest["team"]["name"])
                for member in manifest["team"]["members"]:
                    Membership.objects.create(team=team, user=users[int(member["user"])], role=member["role"] or Role.MEMBER)
            exported = manifest["project"]
            project_name = name or exported["name"]
            if Project.objects.filter(team=team, name=project_name).exists():
                raise ValidationError({"name": f"Team {team.name!r} already has a project named {project_name!r}."})
            creator = users.get(exported["created_by"]) if exported["created_by"] else None
            project = Project.objects.create(team=team, name=project_name, description=exported["description"],
                                             created_by=creator)
            project.created_at = datetime.datetime.fromisoformat(exported["created_at"])
            project.save(update_fields=["created_at"])
            _import_rows(manifest, archive=archive, project=project, users=users, stored=stored)
    except BaseException:
        for stored_name in stored:
            default_storage.delete(stored_name)
        raise
    return project


def _import_rows(
    manifest: dict[str, Any], *, archive: tarfile.TarFile, project: Project, users: dict[int, Any], stored: list[str]
) -> None:
    labels = {model._meta.label_lower: model for model, _ in export_models()}
    user_model = get_user_model()
    user_label = user_model._meta.label_lower
    new_pk: dict[tuple[str, Any], Any] = {("workspaces.project", manifest["project"]["pk"]): project.pk}
    if manifest["team"].get("pk") is not None:
        new_pk[("workspaces.team", manifest["team"]["pk"])] = project.team_id
    new_pk.update({(user_label, old): user.pk for old, user in users.items()})
    exported = {(row["model"], row["pk"]) for row in manifest["rows"]} | set(new_pk)
    refs = export_refs()
    deferred: list[tuple[type[models.Model], Any, str, tuple[str, Any]]] = []
    files: dict[str, str] = {}
    held: list[dict[str, Any]] = []  # rows whose (kind, id) target comes later: written last
    for row in manifest["rows"]:
        model = labels.get(row["model"])
        if model is None:
            raise ValidationError({"archive": f"Rows of {row['model']!r}, which this installation does not export."})
        model_refs = {(k, i): kinds for (label, k, i), kinds in refs.items() if label == row["model"]}
        targets = [_ref_target(row, kind_field, id_field, kinds) for (kind_field, id_field), kinds in model_refs.items()]
        if any(t in exported and t not in new_pk for t in targets):
            held.append(row)
            continue
        _import_row(row, model=model, model_refs=model_refs, archive=archive, users=users, labels=labels,
                    new_pk=new_pk, deferred=deferred, files=files, stored=stored)
    for row in held:
        model_refs = {(k, i): kinds for (label, k, i), kinds in refs.items() if label == row["model"]}
        _import_row(row, model=labels[row["model"]], model_refs=model_refs, archive=archive, users=users,
                    labels=labels, new_pk=new_pk, deferred=deferred, files=files, stored=stored)
    for model, pk, attname, key in deferred:
        model._default_manager.filter(pk=pk).update(**{attname: new_pk.get(key)})


def _ref_target(row: dict[str, Any], kind_field: str | None, id_field: str, kinds: dict[Any, str]) -> tuple[str, Any] | None:
    kind = row["fields"].get(kind_field) if kind_field else None
    old = row["fields"].get(id_field)
    if old is None or kind not in kinds:
        return None
    return (kinds[kind], old)


def _import_row(
    row: dict[str, Any], *, model: type[models.Model], model_refs: dict[tuple[str | None, str], dict[Any, str]],
    archive: tarfile.TarFile, users: dict[int, Any], labels: dict[str, type[models.Model]],
    new_pk: dict[tuple[str, Any], Any], deferred: list[tuple[type[models.Model], Any, str, tuple[str, Any]]],
    files: dict[str, str], stored: list[str],
) -> None:
    fields = dict(row["fields"])
    for (kind_field, id_field), kinds in model_refs.items():
        if fields.get(id_field) is None:
            continue
        target = _ref_target(row, kind_field, id_field, kinds)
        if target is not None and target in new_pk:
            fields[id_field] = new_pk[target]
        elif getattr(model._meta.get_field(id_field), "null", False):
            fields[id_field] = None
        else:
            logger.warning("%s %s: its %s %r is not in the archive; left out", row["model"], row["pk"], id_field,
                           fields[id_field])
            return
    later: list[tuple[str, tuple[str, Any]]] = []
    for fk in (f for f in model._meta.concrete_fields if isinstance(f, models.ForeignKey)):
        old = fields.get(fk.name)
        if old is None:
            continue
        related: Any = fk.related_model
        target = related._meta.label_lower
        if related is get_user_model():
            fields[fk.name] = users[int(old)].pk
        elif (target, old) in new_pk:
            fields[fk.name] = new_pk[(target, old)]
        elif target in labels and fk.null:  # a row that comes later (a cycle): filled in below
            fields[fk.name] = None
            later.append((fk.attname, (target, old)))
        elif fk.null:
            logger.warning("%s.%s points outside the project; left empty", row["model"], fk.name)
            fields[fk.name] = None
        else:
            raise ValidationError({"archive": f"{row['model']}.{fk.name} points at a row not in the archive."})
    for file_field in _file_fields(model):
        old_name = fields.get(file_field.name)
        if old_name:
            if old_name not in files:
                files[old_name] = default_storage.save(old_name, ContentFile(_media_bytes(archive, old_name)))
                stored.append(files[old_name])
            fields[file_field.name] = files[old_name]
    for m2m in model._meta.many_to_many:
        target_label = m2m.related_model._meta.label_lower  # type: ignore[union-attr]
        fields[m2m.name] = [new_pk[(target_label, old)] for old in fields.get(m2m.name, [])
                            if (target_label, old) in new_pk]
    (obj,) = serializers.deserialize("json", json.dumps([{"model": row["model"], "fields": fields}]))
    obj.object.pk = None
    # raw: keeps created_at and other auto_now values, runs no file-field pre_save.
    obj.object.save_base(raw=True)
    for m2m_name, values in (obj.m2m_data or {}).items():
        getattr(obj.object, m2m_name).set(values)
    new_pk[(row["model"], row["pk"])] = obj.object.pk
    deferred.extend((model, obj.object.pk, attname, key) for attname, key in later)


def default_archive_name(project: Project) -> str:
    return f"atelier-project-{project.pk}-{time.strftime('%Y%m%d-%H%M%S')}.tar.gz"

