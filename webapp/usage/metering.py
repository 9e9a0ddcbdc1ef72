"""Reading what a finished job used from its row, for any kind, by the lifecycle's column conventions.

No kind tells usage anything: a new kind is metered as soon as its model names
its project (``project``, or a parent row that has one, as a chat reply's
conversation), its person (the kind's ``owner``, else ``author``, ``user``,
``requested_by`` or ``created_by``) and whichever of these it has:
``model_name``, ``prompt_tokens``, ``completion_tokens``, ``steps_done``,
``batch_mean``, ``byte_size``, an API ``key`` (on the row or on a one-to-one
row beside it, as the API's image call), and child rows with ``width``,
``height`` and ``byte_size`` (images). The plan for a model is worked out
once, from ``_meta``, and read in two queries.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Count, F, Sum
from django.db.models.functions import Coalesce

PERSON_FIELDS = ("author", "user", "requested_by", "created_by")
NUMBERS = {"model_name": "model_name", "prompt_tokens": "prompt_tokens", "completion_tokens": "completion_tokens",
           "steps": "steps_done", "batch_mean": "batch_mean", "own_bytes": "byte_size"}
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


def _seconds(start: datetime | None, end: datetime | None) -> float:
    return max((end - start).total_seconds(), 0.0) if start and end else 0.0


def job_read(*, model: type[models.Model], job_id: int, owner: str = "",
             measured: dict[str, Any] | None = None) -> Reading | None:
    """What the job ``job_id`` of ``model`` used, as stored now; None if the row is gone.

    ``measured`` (from ``job_finished``) wins over what the row says:
    ``compute_seconds`` of a batched text job. Otherwise compute seconds are
    the time from the claim to the end, divided by the row's ``batch_mean``.
    """
    measured = measured or {}
    plan = plan_for(model, owner)
    names = list(plan.lookups)
    row = model._default_manager.filter(pk=job_id).values_list(*plan.lookups.values()).first()
    if row is None:
        return None
    got = dict(zip(names, row, strict=True))
    images = pixels = child_bytes = 0
    for accessor in plan.images:
        rel = next(r for r in model._meta.related_objects if r.get_accessor_name() == accessor)
        sums = rel.related_model._default_manager.filter(**{rel.field.name: job_id}).aggregate(  # type: ignore[union-attr]
            n=Count("pk"), px=Coalesce(Sum(F("width") * F("height")), 0), b=Coalesce(Sum("byte_size"), 0))
        images, pixels, child_bytes = images + sums["n"], pixels + sums["px"], child_bytes + sums["b"]
    started, finished, created = got.get("started_at"), got.get("finished_at"), got.get("created_at")
    batch = float(got.get("batch_mean") or measured.get("batch_mean") or 1.0)
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
