"""Reads of the studio. Jobs and assets are fetched through their project,
which is fetched through the user's membership: outsiders get 404."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import IO, Any

from django.core.files.storage import default_storage
from django.db.models import QuerySet
from django.http import Http404

from webapp.core.http import AnyUser
from webapp.core.jobs import LIVE_STATUSES, job_fair_positions
from webapp.studio.models import Asset, Job, JobStatus
from webapp.workspaces.models import Project
from webapp.workspaces.selectors import project_get_for_member


def job_get_for_member(*, user: AnyUser, project_id: int, job_id: int) -> Job:
    """A job of a project the user belongs to, with ``job.project.membership`` set; 404 otherwise."""
    project = project_get_for_member(user=user, project_id=project_id)
    try:
        job = Job.objects.select_related("author").get(pk=job_id, project=project)
    except (Job.DoesNotExist, ValueError, TypeError):
        raise Http404("No such job") from None
    job.project = project
    return job


def job_list_recent(*, project: Project, author: AnyUser, limit: int = 12) -> list[Job]:
    """The author's latest jobs in the project, newest first, with their assets."""
    jobs = (
        Job.objects.filter(project=project, author_id=author.pk)
        .prefetch_related("assets")
        .order_by("-created_at", "-id")[:limit]
    )
    return list(jobs)


def job_queue_for_user(*, project: Project, user: AnyUser) -> list[Job]:
    """The user's queued and running jobs in the project, oldest first, each with ``queue_position``.

    The position is the job's place in the fair order of the shared image
    queue (every project's jobs; 1 = next to start), which reveals nothing
    but a number. Two queries however long the queue is.
    """
    jobs = list(
        Job.objects.filter(project=project, author_id=user.pk, status__in=LIVE_STATUSES).order_by("created_at", "id")
    )
    positions = job_fair_positions(kind="studio.image") if any(job.status == JobStatus.QUEUED for job in jobs) else {}
    for job in jobs:
        job.queue_position = positions.get(job.pk)
    return jobs


def asset_get_for_member(*, user: AnyUser, project_id: int, asset_id: int) -> Asset:
    """An asset of a project the user belongs to, with ``asset.project.membership`` set; 404 otherwise."""
    project = project_get_for_member(user=user, project_id=project_id)
    try:
        asset = Asset.objects.select_related("job", "job__prompt_record", "author").get(pk=asset_id, project=project)
    except (Asset.DoesNotExist, ValueError, TypeError):
        raise Http404("No such asset") from None
    asset.project = project
    return asset


def asset_list(
    *,
    project: Project,
    author_id: int | None = None,
    model_name: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    job_id: int | None = None,
    review_state: str | None = None,
) -> QuerySet[Asset]:
    """The project's assets, newest first, narrowed by the gallery's filters."""
    assets = Asset.objects.filter(project=project).select_related("author")
    if author_id:
        assets = assets.filter(author_id=author_id)
    if model_name:
        assets = assets.filter(model_name=model_name)
    if date_from:
        assets = assets.filter(created_at__date__gte=date_from)
    if date_to:
        assets = assets.filter(created_at__date__lte=date_to)
    if job_id:
        assets = assets.filter(job_id=job_id)
    if review_state:
        assets = assets.filter(review_state="" if review_state == "none" else review_state)
    return assets.order_by("-created_at", "-id")


def asset_model_names(*, project: Project) -> list[str]:
    return list(
        Asset.objects.filter(project=project).order_by("model_name").values_list("model_name", flat=True).distinct()
    )


def asset_open(*, asset: Asset, thumbnail: bool = False) -> IO[bytes]:
    """The stored bytes of the asset (or its thumbnail), from whichever storage holds them."""
    return default_storage.open((asset.thumbnail if thumbnail else asset.file).name, "rb")


def edit_file_open(*, job: Job, which: str) -> IO[bytes]:
    """The stored source (``which="source"``) or mask of an edit job."""
    return default_storage.open((job.edit_source if which == "source" else job.edit_mask).name, "rb")


def jobs_describe(project_id: int, ids: Any) -> dict[int, Any]:
    """Image jobs, with thumbnails, as the template page lists what a version made."""
    from django.urls import reverse

    from webapp.prompt_templates.outputs import OutputView

    jobs = Job.objects.filter(pk__in=list(ids), project_id=project_id).prefetch_related("assets")
    return {
        job.pk: OutputView(
            label=job.prompt,
            url=f"{reverse('studio:gallery', kwargs={'project_id': project_id})}?job={job.pk}",
            thumbnails=tuple(
                reverse("studio:asset_thumbnail", kwargs={"project_id": project_id, "asset_id": asset.pk})
                for asset in job.assets.all()
            ),
            status=job.get_status_display(),
        )
        for job in jobs
    }


MAX_EDIT_CHAIN = 50


def asset_edit_chain(*, asset: Asset) -> tuple[list[Asset], list[Asset]]:
    """The lineage panel's chain: the original, each edit down to ``asset`` (last), and ``asset``'s own edits.

    Walks ``parent`` within the asset's project, at most ``MAX_EDIT_CHAIN`` steps.
    """
    chain = [asset]
    seen = {asset.pk}
    parent_id = asset.parent_id
    while parent_id is not None and parent_id not in seen and len(chain) <= MAX_EDIT_CHAIN:
        parent = Asset.objects.filter(pk=parent_id, project_id=asset.project_id).first()
        if parent is None:
            break
        chain.append(parent)
        seen.add(parent.pk)
        parent_id = parent.parent_id
    children = list(Asset.objects.filter(parent_id=asset.pk, project_id=asset.project_id).order_by("pk")[:MAX_EDIT_CHAIN])
    return chain[::-1], children


def asset_diff_get_for_member(*, user: AnyUser, project_id: int, asset_id: int, other_id: int) -> tuple[Asset, Asset]:
    """Two images of one edit chain (the same original), for the Diff view; 404 for anyone who may not see
    them, and for two images of different chains (they have no lineage to compare)."""
    asset = asset_get_for_member(user=user, project_id=project_id, asset_id=asset_id)
    other = asset_get_for_member(user=user, project_id=project_id, asset_id=other_id)
    if asset.pk == other.pk or asset_edit_chain(asset=asset)[0][0].pk != asset_edit_chain(asset=other)[0][0].pk:
        raise Http404("These two images are not of one edit chain.")
    return asset, other


@dataclass(frozen=True)
class DiffRow:
    label: str
    before: str
    after: str

    @property
    def differs(self) -> bool:
        return self.before != self.after


def asset_diff_rows(*, before: Asset, after: Asset) -> list[DiffRow]:
    """The parameters of two images side by side, in the lineage panel's order (text: what the page shows)."""
    def mode(asset: Asset) -> str:
        return asset.edit_mode or "original"

    def param(key: str) -> Callable[[Asset], str]:
        return lambda asset: "" if asset.params.get(key) in (None, "") else str(asset.params.get(key))

    fields: list[tuple[str, Callable[[Asset], str]]] = [
        ("Prompt", lambda a: a.prompt),
        ("Negative prompt", param("negative_prompt")),
        ("Made as", mode),
        ("From", lambda a: f"image {a.parent_id}" if a.parent_id else ""),
        ("Strength", lambda a: param("strength")(a) if a.is_edit else ""),
        ("Mask blur", lambda a: param("mask_blur")(a) if a.mask else ""),
        ("Inpaint area", lambda a: param("inpaint_area")(a) if a.mask else ""),
        ("Padding", lambda a: param("padding")(a) if a.mask else ""),
        ("Model", lambda a: a.model_name),
        ("Scheduler", lambda a: a.scheduler),
        ("Steps", lambda a: str(a.steps)),
        ("Guidance", lambda a: f"{a.guidance_scale:g}"),
        ("Seed", lambda a: str(a.seed)),
        ("Size", lambda a: f"{a.width}\u00d7{a.height}"),  # the multiplication sign, as the page writes sizes
        ("By", lambda a: a.author.username if a.author_id and a.author else "(deleted)"),
    ]
    return [DiffRow(label, read(before), read(after)) for label, read in fields]
