"""Reading what a finished job used from its row, for any kind, by the lifecycle's column conventions.

No kind tells usage anything: a new kind is metered as soon as its model names
its project (``project``, or a parent row that has one, as a chat reply's
conversation), its person (the kind's ``owner``, else ``author``, ``user``,
``requested_by`` or ``created_by``) and whichever of these it has:
``model_name``, ``prompt_tokens``, ``completion_tokens``, ``steps_done``,
``byte_size``, an API ``key`` (on the row or on a one-to-one
row beside it, as the API's image call), and child rows with ``width``,
``height`` and ``byte_size`` (images). The plan for a model is worked out
once, from ``_meta``, and read in two queries.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Count, F, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from webapp.core.sql import prepared_cursor

PERSON_FIELDS = ("author", "user", "requested_by", "created_by")
NUMBERS = {"model_name": "model_name", "prompt_tokens": "prompt_tokens", "completion_tokens": "completion_tokens",
           "steps": "steps_done", "own_bytes": "byte_size"}
TIMES = ("created_at", "started_at", "finished_at")


@dataclass(frozen=True)
class Plan:
    """Where a model keeps what usage reads: ``values()`` lookups by name, and its image children."""

    lookups: dict[str, str]
    images: tuple[str, ...] = field(default=())  # reverse accessors of rows with width, height, byte_size


def _fk(model: type[models.Model], name: str) -> models.ForeignKey[Any, Any] | None:
    try:
        found = model._meta.get_field(name)
    except Exception:
        return None
    return found if isinstance(found, models.ForeignKey) else None


def _is_project(model: Any) -> bool:
    return bool(model) and model._meta.label == "workspaces.Project"


def _has(model: Any, name: str) -> bool:
    try:
        model._meta.get_field(name)
    except Exception:
        return False
    return True


@cache
def plan_for(model: type[models.Model], owner: str = "") -> Plan:
    lookups: dict[str, str] = {}
    project = _fk(model, "project")
    if project is not None and _is_project(project.related_model):
        lookups["project_id"], lookups["team_id"] = "project_id", "project__team_id"
    else:
        for parent in model._meta.get_fields():
            if isinstance(parent, models.ForeignKey):
                up = _fk(parent.related_model, "project")  # type: ignore[arg-type]
                if up is not None and _is_project(up.related_model):
                    lookups["project_id"] = f"{parent.name}__project_id"
                    lookups["team_id"] = f"{parent.name}__project__team_id"
                    break
    person = owner or next((f"{name}_id" for name in PERSON_FIELDS if _is_user_fk(model, name)), "")
    if person:
        lookups["user_id"] = person
    key = _fk(model, "key")
    if key is not None:
        lookups["key_id"], lookups["key_name"] = "key_id", "key__name"
    else:
        for rel in model._meta.related_objects:
            if rel.one_to_one and _fk(rel.related_model, "key") is not None:  # type: ignore[arg-type]
                name = rel.get_accessor_name()
                lookups["key_id"], lookups["key_name"] = f"{name}__key_id", f"{name}__key__name"
                break
    for name, column in NUMBERS.items():
        if _has(model, column):
            lookups[name] = column
    for name in TIMES:
        if _has(model, name):
            lookups[name] = name
    images = tuple(
        str(rel.get_accessor_name()) for rel in model._meta.related_objects
        if rel.one_to_many and all(_has(rel.related_model, f) for f in ("width", "height", "byte_size"))
    )
    return Plan(lookups=lookups, images=images)


def _is_user_fk(model: type[models.Model], name: str) -> bool:
    found = _fk(model, name)
    return found is not None and found.related_model._meta.label == settings.AUTH_USER_MODEL  # type: ignore[union-attr]


@dataclass(frozen=True)
class Reading:
    """What one job used, as ``UsageRecord`` stores it."""

    team_id: int | None
    project_id: int | None
    user_id: int | None
    key_id: int | None
    key_name: str
    model_name: str
    prompt_tokens: int
    completion_tokens: int
    images: int
    steps: int
    pixels: int
    compute_seconds: float
    queue_seconds: float
    bytes_stored: int
    job_created_at: datetime | None
    finished_at: datetime | None


# The finish write reads the row at every job's end. Compiling the ORM query each time cost more than running it
# (about 0.5 ms of the 2.5 ms the write took on SQLite), so each model's reads are compiled once per process,
# with a marker in place of the job's id, and run through the cursor.
_MARK = 9_876_543_210_123


@dataclass(frozen=True)
class _Query:
    sql: str
    params: tuple[Any, ...]
    mark: int  # index of the job's id in params


def _compiled(queryset: models.QuerySet[Any, Any]) -> _Query:
    sql, params = queryset.query.sql_with_params()
    marks = [i for i, value in enumerate(params) if value == _MARK]
    if len(marks) != 1:  # a manager that filters on the same number: never expected, refuse loudly
        raise RuntimeError(f"cannot precompile the usage read of {queryset.model.__name__}")
    return _Query(sql=sql, params=tuple(params), mark=marks[0])


@cache
def _row_query(model: type[models.Model], owner: str) -> _Query:
    lookups = plan_for(model, owner).lookups
    return _compiled(model._default_manager.filter(pk=_MARK).values_list(*lookups.values()).order_by())


@cache
def _image_queries(model: type[models.Model]) -> tuple[_Query, ...]:
    queries = []
    for accessor in plan_for(model).images:
        rel = next(r for r in model._meta.related_objects if r.get_accessor_name() == accessor)
        name = rel.field.name
        queries.append(_compiled(
            rel.related_model._default_manager.filter(**{name: _MARK}).order_by().values(name).annotate(  # type: ignore[union-attr]
                n=Count("pk"), px=Coalesce(Sum(F("width") * F("height")), 0), b=Coalesce(Sum("byte_size"), 0),
            ).values_list("n", "px", "b")))
    return tuple(queries)


def _fetch_one(query: _Query, job_id: int) -> tuple[Any, ...] | None:
    params = list(query.params)
    params[query.mark] = job_id
    with prepared_cursor() as cursor:  # prepared on PostgreSQL: its plan took longer than its run
        cursor.execute(query.sql, params)
        row = cursor.fetchone()
    return tuple(row) if row is not None else None


def datetime_from_db(value: Any) -> datetime | None:
    """A datetime column read through the cursor: SQLite gives it naive (UTC) or as text."""
    if value is None:
        return None
    if isinstance(value, str):
        value = parse_datetime(value)
    if value is not None and settings.USE_TZ and timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return value  # type: ignore[no-any-return]


def _seconds(start: datetime | None, end: datetime | None) -> float:
    return max((end - start).total_seconds(), 0.0) if start and end else 0.0


def job_read(*, model: type[models.Model], job_id: int, owner: str = "",
             measured: dict[str, Any] | None = None) -> Reading | None:
    """What the job ``job_id`` of ``model`` used, as stored now; None if the row is gone.

    Compute seconds are ``measured["compute_seconds"]`` (from ``job_finished``:
    a text job's share of the engine's batched steps, which the text worker
    passes for chat and API jobs alike), else the time from the claim to the
    end divided by ``measured["batch_mean"]`` (1 when not given). A row's own
    ``batch_mean`` column (chat keeps one, the API's jobs none) is never read,
    so both interfaces count the same work the same.
    """
    measured = measured or {}
    plan = plan_for(model, owner)
    row = _fetch_one(_row_query(model, owner), job_id)
    if row is None:
        return None
    got = dict(zip(plan.lookups, row, strict=True))
    for name in TIMES:
        got[name] = datetime_from_db(got.get(name))
    images = pixels = child_bytes = 0
    for query in _image_queries(model):
        sums = _fetch_one(query, job_id)
        if sums is not None:
            images, pixels, child_bytes = images + sums[0], pixels + (sums[1] or 0), child_bytes + (sums[2] or 0)
    started, finished, created = got.get("started_at"), got.get("finished_at"), got.get("created_at")
    batch = float(measured.get("batch_mean") or 1.0)
    compute = measured.get("compute_seconds")
    if compute is None:
        compute = _seconds(started, finished) / max(batch, 1.0)
    return Reading(
        team_id=got.get("team_id"), project_id=got.get("project_id"), user_id=got.get("user_id"),
        key_id=got.get("key_id"), key_name=str(got.get("key_name") or ""), model_name=str(got.get("model_name") or ""),
        prompt_tokens=int(got.get("prompt_tokens") or 0), completion_tokens=int(got.get("completion_tokens") or 0),
        images=images, steps=int(got.get("steps") or 0), pixels=int(pixels),
        compute_seconds=float(compute), queue_seconds=_seconds(created, started or finished),
        bytes_stored=int(child_bytes) + int(got.get("own_bytes") or 0),
        job_created_at=created, finished_at=finished,
    )
