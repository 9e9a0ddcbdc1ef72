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
An app whose sums must count the imported rows defines
``project_import_done(project)``: it runs last, in the import's transaction.
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

An archive is untrusted input (issue 23, finding 3). Import:

- checks it first: ``manifest.sha256`` (the first member) must match
  ``manifest.json``, and every ``media/`` member must be listed in the
  manifest's ``checksums`` with its size and SHA-256, and match them; nothing
  else may be in it. Members are streamed, never read whole: each has a size
  limit, and the whole may not expand more than ``MAX_RATIO`` times the
  archive's size (a gzip bomb is refused before it is unpacked);
- validates every row as the model and the services do (``full_clean``, text
  limits, roles), and lets each app re-derive what it would have derived
  itself: its AppConfig's ``project_import_clean(obj)`` (chat re-renders a
  message's HTML from its text, studio reads an image's content type and
  hash from its bytes);
- marks what records people's acts: ``project_import_marks = [("Verdict",
  "imported_from")]`` points a foreign key at the ``ProjectImport`` row (the
  archive, its SHA-256, who ran the import and when); a JSON field
  (``("AuditEntry", "detail")``) gets ``"imported": {archive, sha256, by,
  at, import_id}``. Authors and times stay the archive's (the history of the
  work); the mark is what the pages show, so an imported verdict never reads
  as given live, here, by the local user of that name.
"""
from __future__ import annotations

import datetime
import getpass
import gzip
import hashlib
import io
import json
import logging
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.core import serializers
from django.core.exceptions import SuspiciousFileOperation, ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction

from webapp.core import bounds
from webapp.workspaces.models import Membership, Project, ProjectImport, Role, Team

logger = logging.getLogger(__name__)

# 2: checksums of the manifest and of every media file (format 1 had none, and is refused).
FORMAT = 2
MANIFEST = "manifest.json"
MANIFEST_SUM = "manifest.sha256"
MEDIA_PREFIX = "media/"
# Import limits: one manifest, one media file, and how far the whole may expand beyond the
# archive's own size (below RATIO_FLOOR bytes any ratio passes: tar pads small archives with zeros).
MAX_MANIFEST_BYTES = 256 * 1024 * 1024
MAX_MEMBER_BYTES = 1024 * 1024 * 1024
MAX_RATIO = 50
RATIO_FLOOR = 64 * 1024 * 1024
CHUNK = 1024 * 1024


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
    checksums = {name: _storage_checksum(name) for name in manifest["media"]}
    manifest["checksums"] = checksums
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        data = json.dumps(manifest, indent=1).encode()
        _add_bytes(archive, MANIFEST_SUM, hashlib.sha256(data).hexdigest().encode())
        _add_bytes(archive, MANIFEST, data)
        for name in manifest["media"]:
            info = tarfile.TarInfo(MEDIA_PREFIX + name)
            info.size = checksums[name]["size"]
            with default_storage.open(name, "rb") as fh:
                archive.addfile(info, fh)
            summary.files += 1
            summary.bytes += info.size
    return summary


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def _storage_checksum(name: str) -> dict[str, Any]:
    digest, size = hashlib.sha256(), 0
    with default_storage.open(name, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return {"sha256": digest.hexdigest(), "size": size}


def _refuse(message: str) -> ValidationError:
    return ValidationError({"archive": message})


def _copy_member(source: IO[bytes], target: IO[bytes], *, size: int) -> str:
    """Copy a member in chunks (never more than its declared ``size``); its SHA-256."""
    digest, done = hashlib.sha256(), 0
    while chunk := source.read(min(CHUNK, size - done)):
        digest.update(chunk)
        target.write(chunk)
        done += len(chunk)
        if done >= size:
            break
    if done != size:
        raise _refuse("A member is shorter than its header says: the archive is truncated.")
    return digest.hexdigest()


@dataclass
class _Unpacked:
    """What the checked archive held: its manifest, and each media file already stored (old name -> new)."""

    manifest: dict[str, Any]
    stored: dict[str, str]


def _media_name_ok(name: Any) -> bool:
    return isinstance(name, str) and bool(name) and not name.startswith("/") and ".." not in name.split("/") \
        and "\\" not in name and "\x00" not in name


def _unpack(path: Path, *, stored: list[str]) -> _Unpacked:
    """Read the archive once, as a stream: check the manifest and every member, store the media.

    Raises ValidationError (``archive``) for anything that does not match; files
    already stored are listed in ``stored`` so the caller can delete them.
    """
    allowed = max(MAX_RATIO * path.stat().st_size, RATIO_FLOOR)
    expected_sum: str | None = None
    manifest: dict[str, Any] | None = None
    checksums: dict[str, Any] = {}
    saved: dict[str, str] = {}
    total = 0
    # gzip's own reader decompresses at most what each read asks for; tarfile's "r|gz" inflates a whole
    # compressed buffer at once, which zeros turn into ~10 MB (measured: a 4 MB peak against 31 MB).
    gz = gzip.open(path, "rb")  # noqa: SIM115 - closed below
    try:
        archive = tarfile.open(fileobj=gz, mode="r|")  # noqa: SIM115 - closed below
    except (tarfile.TarError, OSError, EOFError) as exc:
        gz.close()
        raise _refuse(f"Not a .tar.gz archive ({exc}).") from None
    with gz, archive:
        try:
            for member in archive:
                total += member.size
                if total > allowed:
                    raise _refuse(f"The archive expands more than {MAX_RATIO} times its size: refused (a bomb?).")
                if not member.isfile():
                    raise _refuse(f"{member.name!r} is not a plain file.")
                source = archive.extractfile(member)
                assert source is not None  # a regular file
                if member.name == MANIFEST_SUM and expected_sum is None and manifest is None:
                    if member.size > 200:
                        raise _refuse("manifest.sha256 is too long.")
                    expected_sum = source.read(member.size).decode("ascii", "replace").strip()
                elif member.name == MANIFEST and manifest is None:
                    manifest = _read_manifest(source, size=member.size, expected_sum=expected_sum)
                    checksums = manifest["checksums"]
                elif member.name.startswith(MEDIA_PREFIX) and manifest is not None:
                    name = member.name[len(MEDIA_PREFIX):]
                    if name not in checksums or name in saved:
                        raise _refuse(f"The member {member.name!r} is not in the manifest (or comes twice).")
                    saved[name] = _store_media(name, source, size=member.size, expected=checksums[name],
                                               stored=stored)
                elif member.name in {MANIFEST_SUM, MANIFEST}:
                    raise _refuse(f"{member.name} comes twice, or in the wrong place.")
                elif manifest is None:
                    raise _refuse("The archive has no manifest.json first: it is not a project export.")
                else:
                    raise _refuse(f"Unexpected member {member.name!r}: a project export holds the manifest and "
                                  "its media only.")
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise _refuse(f"The archive is damaged ({exc}).") from None
    if manifest is None:
        raise _refuse("The archive has no manifest.json: it is not a project export.")
    missing = sorted(set(checksums) - set(saved))
    if missing:
        raise _refuse(f"The file {missing[0]!r} is listed but missing from the archive.")
    return _Unpacked(manifest=manifest, stored=saved)


def _read_manifest(source: IO[bytes], *, size: int, expected_sum: str | None) -> dict[str, Any]:
    if size > MAX_MANIFEST_BYTES:
        raise _refuse(f"manifest.json is over {MAX_MANIFEST_BYTES // 1024 // 1024} MB.")
    buffer = io.BytesIO()
    actual = _copy_member(source, buffer, size=size)
    data = buffer.getvalue()
    try:
        manifest = json.loads(data)
    except (ValueError, RecursionError):
        raise _refuse("manifest.json is not valid JSON.") from None
    if not isinstance(manifest, dict):
        raise _refuse("manifest.json is not an object.")
    if manifest.get("format") != FORMAT:
        raise _refuse(f"Unknown export format {manifest.get('format')!r} (this installation reads {FORMAT}).")
    if expected_sum is None or expected_sum != actual:
        raise _refuse("manifest.json does not match manifest.sha256: the archive was changed or damaged.")
    for key, kind in (("project", dict), ("team", dict), ("users", list), ("rows", list), ("media", list),
                      ("checksums", dict)):
        if not isinstance(manifest.get(key), kind):
            raise _refuse(f"manifest.json: {key!r} is missing or not a {kind.__name__}.")
    checksums = manifest["checksums"]
    if sorted(checksums) != sorted(set(manifest["media"])):
        raise _refuse("manifest.json: the media list and the checksums do not match.")
    for name, entry in checksums.items():
        if not _media_name_ok(name):
            raise _refuse(f"manifest.json: {name!r} is not a storage name.")
        if not (isinstance(entry, dict) and isinstance(entry.get("sha256"), str) and isinstance(entry.get("size"), int)
                and not isinstance(entry.get("size"), bool)):
            raise _refuse(f"manifest.json: the checksum of {name!r} needs a sha256 and a size.")
    return manifest


def _store_media(name: str, source: IO[bytes], *, size: int, expected: dict[str, Any], stored: list[str]) -> str:
    """Stream one media member into the default storage, if its size and SHA-256 match the manifest's."""
    if size > MAX_MEMBER_BYTES:
        raise _refuse(f"The file {name!r} is over {MAX_MEMBER_BYTES // 1024 // 1024} MB.")
    if size != expected["size"]:
        raise _refuse(f"The file {name!r} is {size} bytes, the manifest says {expected['size']}.")
    with tempfile.TemporaryFile() as spool:
        if _copy_member(source, spool, size=size) != expected["sha256"]:
            raise _refuse(f"The file {name!r} does not match its checksum: the archive was changed or damaged.")
        spool.seek(0)
        try:
            new_name = default_storage.save(name, File(spool, name=name))
        except SuspiciousFileOperation:
            raise _refuse(f"{name!r} is not a storage name.") from None
    stored.append(new_name)
    return new_name


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _messages(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{key}: {' '.join(values)}" for key, values in exc.message_dict.items())
    return " ".join(exc.messages)


def _users(manifest: dict[str, Any]) -> dict[int, Any]:
    user_model = get_user_model()
    mapped: dict[int, Any] = {}
    for entry in manifest["users"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("username"), str) or not _is_id(entry.get("pk")):
            raise _refuse("manifest.json: every user needs a pk and a username.")
        user = user_model._default_manager.filter(username=entry["username"]).first()
        if user is None:
            user = user_model(username=entry["username"], email=entry.get("email") or "",
                              first_name=entry.get("first_name") or "", last_name=entry.get("last_name") or "")
            user.set_unusable_password()
            try:
                user.full_clean(exclude=["password"])
            except ValidationError as exc:
                raise _refuse(f"user {entry['username']!r:.60}: {_messages(exc)}") from None
            user.save()
        mapped[int(entry["pk"])] = user
    return mapped


def _archive_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def project_import(
    *, path: Path, team: Team | None = None, name: str | None = None, actor: Any = None, actor_name: str = ""
) -> Project:
    """Create a project from the archive at ``path``, with new ids; returns it.

    Into ``team`` when given, else into a new team with the exported team's
    name and members. ``name`` overrides the project's name; a name already
    taken in the team is a ValidationError naming ``name``. All rows are
    written in one transaction; files stored before a failure are deleted.
    ``actor`` (a user) or ``actor_name`` says who ran the import (default: the
    operating-system user, "(shell)"); the ``ProjectImport`` row keeps it with
    the archive's name and SHA-256. An archive that fails any check (see the
    module's docstring) is a ValidationError naming ``archive``.
    """
    stored: list[str] = []
    by_name = actor.get_username() if actor is not None else (actor_name or f"{getpass.getuser()} (shell)")
    try:
        with transaction.atomic():
            unpacked = _unpack(path, stored=stored)
            manifest = unpacked.manifest
            users = _users(manifest)
            exported = manifest["project"]
            if team is None:
                team_name = str(manifest["team"].get("name") or "")
                bounds.check_lengths(team=(team_name, bounds.TEAM_NAME))
                team = Team.objects.create(name=team_name or "Imported")
                for member in manifest["team"].get("members") or []:
                    role = member.get("role") if isinstance(member, dict) else None
                    if role not in Role.values or not _is_id(member.get("user")) or int(member["user"]) not in users:
                        raise _refuse(f"manifest.json: team member {member!r:.80} needs a known user and a role "
                                      f"({', '.join(Role.values)}).")
                    Membership.objects.create(team=team, user=users[int(member["user"])], role=role)
            project_name = name or str(exported.get("name") or "")
            description = str(exported.get("description") or "")
            bounds.check_lengths(name=(project_name, bounds.PROJECT_NAME),
                                 description=(description, bounds.PROJECT_DESCRIPTION))
            if not project_name.strip():
                raise ValidationError({"name": "The project needs a name."})
            if Project.objects.filter(team=team, name=project_name).exists():
                raise ValidationError({"name": f"Team {team.name!r} already has a project named {project_name!r}."})
            created_by = exported.get("created_by")
            creator = users.get(created_by) if _is_id(created_by) else None
            project = Project.objects.create(team=team, name=project_name, description=description,
                                             created_by=creator)
            try:
                project.created_at = datetime.datetime.fromisoformat(exported["created_at"])
            except (KeyError, TypeError, ValueError):
                raise _refuse("manifest.json: the project's created_at is not a date and time.") from None
            project.save(update_fields=["created_at"])
            record = ProjectImport.objects.create(
                project=project, archive_name=path.name[:255], archive_sha256=_archive_sha256(path),
                imported_by=actor, imported_by_name=by_name[:150],
            )
            _import_rows(manifest, files=unpacked.stored, project=project, users=users, record=record)
    except BaseException:
        for stored_name in stored:
            default_storage.delete(stored_name)
        raise
    return project


def _import_marks() -> dict[str, list[str]]:
    """model label_lower -> the fields that mark its imported rows (``project_import_marks``)."""
    found: dict[str, list[str]] = {}
    for config in apps.get_app_configs():
        for model_name, field_name in getattr(config, "project_import_marks", ()):
            found.setdefault(config.get_model(model_name)._meta.label_lower, []).append(field_name)
    return found


def _import_cleaners() -> list[Callable[[models.Model], None]]:
    return [config.project_import_clean for config in apps.get_app_configs()  # type: ignore[attr-defined]
            if hasattr(config, "project_import_clean")]


def _validate(obj: models.Model, *, where: str) -> None:
    """The row as the model validates it (choices, lengths, types), and the text limits that
    TextField's ``max_length`` states but Django does not check. Foreign keys were remapped here."""
    exclude = [f.name for f in obj._meta.concrete_fields
               if isinstance(f, models.ForeignKey) or (f.null and getattr(obj, f.attname) is None)]
    errors: dict[str, list[str]] = {}
    try:
        obj.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    for f in obj._meta.concrete_fields:
        value = getattr(obj, f.attname)
        if isinstance(f, models.TextField) and f.max_length and isinstance(value, str) and len(value) > f.max_length:
            errors.setdefault(f.name, []).append(f"At most {f.max_length} characters (this has {len(value)}).")
    if errors:
        raise _refuse(f"{where}: " + "; ".join(f"{key}: {' '.join(values)}" for key, values in errors.items()))


def _import_rows(
    manifest: dict[str, Any], *, files: dict[str, str], project: Project, users: dict[int, Any], record: ProjectImport
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
    held: list[dict[str, Any]] = []  # rows whose (kind, id) target comes later: written last
    context = _RowContext(files=files, marks=_import_marks(), cleaners=_import_cleaners(), record=record)
    for row in manifest["rows"]:
        if not (isinstance(row, dict) and isinstance(row.get("model"), str) and isinstance(row.get("fields"), dict)):
            raise _refuse("manifest.json: every row needs a model and its fields.")
        model = labels.get(row["model"])
        if model is None:
            raise ValidationError({"archive": f"Rows of {row['model']!r}, which this installation does not export."})
        model_refs = {(k, i): kinds for (label, k, i), kinds in refs.items() if label == row["model"]}
        targets = [_ref_target(row, kind_field, id_field, kinds) for (kind_field, id_field), kinds in model_refs.items()]
        if any(t in exported and t not in new_pk for t in targets):
            held.append(row)
            continue
        _import_row(row, model=model, model_refs=model_refs, users=users, labels=labels,
                    new_pk=new_pk, deferred=deferred, context=context)
    for row in held:
        model_refs = {(k, i): kinds for (label, k, i), kinds in refs.items() if label == row["model"]}
        _import_row(row, model=labels[row["model"]], model_refs=model_refs, users=users,
                    labels=labels, new_pk=new_pk, deferred=deferred, context=context)
    for model, pk, attname, key in deferred:
        model._default_manager.filter(pk=pk).update(**{attname: new_pk.get(key)})
    # Apps that keep sums of rows (usage's daily and monthly sums) add the imported rows to them.
    for config in apps.get_app_configs():
        if hasattr(config, "project_import_done"):
            config.project_import_done(project)


@dataclass
class _RowContext:
    files: dict[str, str]  # media: the archive's storage name -> the name stored here
    marks: dict[str, list[str]]
    cleaners: list[Callable[[models.Model], None]]
    record: ProjectImport

    def marker(self) -> dict[str, Any]:
        return {"archive": self.record.archive_name, "sha256": self.record.archive_sha256,
                "by": self.record.imported_by_name, "at": self.record.imported_at.isoformat(),
                "import_id": self.record.pk}


def _ref_target(row: dict[str, Any], kind_field: str | None, id_field: str, kinds: dict[Any, str]) -> tuple[str, Any] | None:
    kind = row["fields"].get(kind_field) if kind_field else None
    old = row["fields"].get(id_field)
    if old is None or kind not in kinds:
        return None
    return (kinds[kind], old)


def _import_row(
    row: dict[str, Any], *, model: type[models.Model], model_refs: dict[tuple[str | None, str], dict[Any, str]],
    users: dict[int, Any], labels: dict[str, type[models.Model]],
    new_pk: dict[tuple[str, Any], Any], deferred: list[tuple[type[models.Model], Any, str, tuple[str, Any]]],
    context: _RowContext,
) -> None:
    fields = dict(row["fields"])
    marks = context.marks.get(row["model"], [])
    mark_fks: list[str] = []
    for mark in marks:
        mark_field = model._meta.get_field(mark)
        if isinstance(mark_field, models.ForeignKey):
            fields[mark] = None  # the source's import row means nothing here: this import's is set below
            mark_fks.append(mark_field.attname)
        else:
            previous = fields.get(mark)
            if previous is not None and not isinstance(previous, dict):
                raise _refuse(f"{row['model']} {row.get('pk')!r}: {mark} must be an object.")
            fields[mark] = {**(previous or {}), "imported": context.marker()}
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
            if not _is_id(old) or int(old) not in users:
                raise _refuse(f"{row['model']}.{fk.name} points at a user not in the manifest.")
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
            if old_name not in context.files:
                raise _refuse(f"The file {old_name!r:.80} of {row['model']} {row.get('pk')!r} is not in the archive.")
            fields[file_field.name] = context.files[old_name]
    for m2m in model._meta.many_to_many:
        target_label = m2m.related_model._meta.label_lower  # type: ignore[union-attr]
        fields[m2m.name] = [new_pk[(target_label, old)] for old in fields.get(m2m.name, [])
                            if (target_label, old) in new_pk]
    try:
        (obj,) = serializers.deserialize("json", json.dumps([{"model": row["model"], "fields": fields}]))
    except serializers.base.DeserializationError as exc:
        raise _refuse(f"{row['model']} {row.get('pk')!r:.40}: {exc}") from None
    obj.object.pk = None
    for attname in mark_fks:
        setattr(obj.object, attname, context.record.pk)
    where = f"{row['model']} {row.get('pk')!r:.40}"
    _validate(obj.object, where=where)
    for clean in context.cleaners:
        try:
            clean(obj.object)
        except ValidationError as exc:
            raise _refuse(f"{where}: {_messages(exc)}") from None
    # raw: keeps created_at and other auto_now values, runs no file-field pre_save.
    obj.object.save_base(raw=True)
    for m2m_name, values in (obj.m2m_data or {}).items():
        getattr(obj.object, m2m_name).set(values)
    new_pk[(row["model"], row["pk"])] = obj.object.pk
    deferred.extend((model, obj.object.pk, attname, key) for attname, key in later)


def default_archive_name(project: Project) -> str:
    return f"atelier-project-{project.pk}-{time.strftime('%Y%m%d-%H%M%S')}.tar.gz"

