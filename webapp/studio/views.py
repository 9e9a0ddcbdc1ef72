from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from generation.errors import ValidationError as EngineValidationError
from webapp.core.http import HtmxHttpRequest
from webapp.core.jobs import QuotaExceeded
from webapp.prompt_templates.selectors import template_use_for_output, template_use_request_parse
from webapp.prompts.models import PromptKind
from webapp.prompts.selectors import prompt_get_for_member
from webapp.studio import selectors, services
from webapp.studio.forms import EditForm, GalleryFilterForm, StudioForm
from webapp.studio.models import Asset
from webapp.workspaces.models import Project
from webapp.workspaces.selectors import project_get_for_member, team_members

GALLERY_PAGE_SIZE = 24


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise Http404("Not found") from None


def _studio_context(request: HttpRequest, project: Project, form: StudioForm) -> dict[str, object]:
    return {
        "project": project,
        "form": form,
        "jobs": selectors.job_list_recent(project=project, author=request.user),
        "queue": selectors.job_queue_for_user(project=project, user=request.user),
        "active_tab": "studio",
    }


@login_required
@require_http_methods(["GET", "POST"])
def index(request: HtmxHttpRequest, project_id: int) -> HttpResponse:
    project = project_get_for_member(user=request.user, project_id=project_id)
    if request.method == "POST":
        form = StudioForm(request.POST)
        use = None
        job = None
        if form.is_valid():
            try:
                use = template_use_request_parse(raw=form.cleaned_data["template_use"], project=project, kind="image")
            except ValidationError as exc:
                form.add_error(None, exc)
        if form.is_valid():
            try:
                job = services.job_create(
                    project=project, actor=project.membership, request=form.cleaned_data["request"],
                    template_use=use,
                )
            except QuotaExceeded as exc:  # shown next to the button, the form kept as typed
                form.add_error(None, exc)
        if job is not None:
            if not request.htmx:
                return redirect("studio:index", project_id=project.pk)
            context = {**_studio_context(request, project, form), "new_job": job}
            return render(request, "studio/_submitted.html", context)
    else:
        initial = {}
        if request.GET.get("reuse"):
            record = prompt_get_for_member(user=request.user, project_id=project.pk, prompt_id=_int(request.GET["reuse"]))
            params = record.params if record.kind == PromptKind.IMAGE else {}  # a chat prompt brings only its text
            initial = StudioForm.initial_from_params(params, prompt=record.text)
        form = StudioForm(initial=initial)
    template = "studio/_form.html" if request.htmx else "studio/index.html"
    return render(request, template, _studio_context(request, project, form))


@login_required
@require_GET
def job_card(request: HttpRequest, project_id: int, job_id: int) -> HttpResponse:
    job = selectors.job_get_for_member(user=request.user, project_id=project_id, job_id=job_id)
    return render(request, "studio/_job_card.html", {"job": job, "project": job.project})


@login_required
@require_GET
def queue_panel(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_get_for_member(user=request.user, project_id=project_id)
    queue = selectors.job_queue_for_user(project=project, user=request.user)
    return render(request, "studio/_queue.html", {"project": project, "queue": queue})


@login_required
@require_POST
def job_cancel(request: HtmxHttpRequest, project_id: int, job_id: int) -> HttpResponse:
    job = selectors.job_get_for_member(user=request.user, project_id=project_id, job_id=job_id)
    job = services.job_cancel(job=job, actor=job.project.membership)
    if not request.htmx:
        return redirect("studio:index", project_id=job.project_id)
    return render(request, "studio/_job_card.html", {"job": job, "project": job.project})


@login_required
@require_GET
def gallery(request: HtmxHttpRequest, project_id: int) -> HttpResponse:
    project = project_get_for_member(user=request.user, project_id=project_id)
    form = GalleryFilterForm(
        request.GET or None,
        members=list(team_members(team=project.team)),
        model_names=selectors.asset_model_names(project=project),
    )
    filters = form.cleaned_data if form.is_valid() else {}
    assets = selectors.asset_list(
        project=project,
        author_id=filters.get("author"),
        model_name=filters.get("model") or None,
        date_from=filters.get("date_from"),
        date_to=filters.get("date_to"),
        job_id=filters.get("job"),
        review_state=filters.get("review") or None,
    )
    page = Paginator(assets, GALLERY_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"project": project, "form": form, "page": page, "active_tab": "gallery"}
    template = "studio/_gallery_page.html" if request.htmx else "studio/gallery.html"
    return render(request, template, context)


@login_required
@require_GET
def asset_detail(request: HttpRequest, project_id: int, asset_id: int) -> HttpResponse:
    asset = selectors.asset_get_for_member(user=request.user, project_id=project_id, asset_id=asset_id)
    chain, edits = selectors.asset_edit_chain(asset=asset)
    context = {
        "project": asset.project,
        "asset": asset,
        "job": asset.job,
        "template_use": template_use_for_output(output_kind="job", output_id=asset.job_id, project=asset.project),
        "params_json": json.dumps(asset.params, indent=2, sort_keys=True),
        "edit_chain": chain if len(chain) > 1 or edits else [],
        "edits": edits,
        "active_tab": "gallery",
    }
    return render(request, "studio/asset_detail.html", context)


@login_required
@require_GET
def asset_diff(request: HttpRequest, project_id: int, asset_id: int, other_id: int) -> HttpResponse:
    """Two images of one edit chain compared: their parameters side by side, the images under a slider."""
    before, after = selectors.asset_diff_get_for_member(user=request.user, project_id=project_id, asset_id=asset_id,
                                                        other_id=other_id)
    context = {
        "project": before.project,
        "before": before,
        "after": after,
        "rows": selectors.asset_diff_rows(before=before, after=after),
        "active_tab": "gallery",
    }
    return render(request, "studio/asset_diff.html", context)


def _asset_response(asset: Asset, *, thumbnail: bool = False, attachment: bool = False) -> FileResponse:
    response = FileResponse(
        selectors.asset_open(asset=asset, thumbnail=thumbnail),
        content_type=asset.content_type,
        as_attachment=attachment,
        filename=("thumb-" if thumbnail else "") + asset.download_name,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=3600"
    return response


@login_required
@require_GET
def asset_image(request: HttpRequest, project_id: int, asset_id: int) -> FileResponse:
    asset = selectors.asset_get_for_member(user=request.user, project_id=project_id, asset_id=asset_id)
    services.asset_record_download(asset=asset, user=request.user, via="view")
    return _asset_response(asset)


@login_required
@require_GET
def asset_thumbnail(request: HttpRequest, project_id: int, asset_id: int) -> FileResponse:
    asset = selectors.asset_get_for_member(user=request.user, project_id=project_id, asset_id=asset_id)
    return _asset_response(asset, thumbnail=True)


@login_required
@require_GET
def asset_download(request: HttpRequest, project_id: int, asset_id: int) -> FileResponse:
    asset = selectors.asset_get_for_member(user=request.user, project_id=project_id, asset_id=asset_id)
    services.asset_record_download(asset=asset, user=request.user)
    return _asset_response(asset, attachment=True)


@login_required
@require_POST
def asset_rerun(request: HttpRequest, project_id: int, asset_id: int, vary: bool = False) -> HttpResponse:
    asset = selectors.asset_get_for_member(user=request.user, project_id=project_id, asset_id=asset_id)
    try:
        services.job_rerun(asset=asset, actor=asset.project.membership, vary=vary)
    except (EngineValidationError, QuotaExceeded) as exc:  # the model is no longer registered; too many waiting
        messages.error(request, f"Cannot run this again: {exc.message}")
    return redirect("studio:index", project_id=asset.project_id)


# --- Edits (issue 19) -----------------------------------------------------------------------------


def _upload(request: HttpRequest, name: str) -> bytes | None:
    from django.conf import settings

    upload = request.FILES.get(name)
    # One byte over the limit is enough for the service to say it is too big.
    return upload.read(settings.MAX_UPLOAD_BYTES + 1) if upload is not None else None


@login_required
@require_http_methods(["GET", "POST"])
def edit(request: HttpRequest, project_id: int) -> HttpResponse:
    """Edit mode: an image from the gallery (``?asset=ID``) or an upload, with a mask where the mode needs one."""
    from generation.image import EditRequest

    project = project_get_for_member(user=request.user, project_id=project_id)
    asset_id = request.POST.get("asset") or request.GET.get("asset")
    asset = selectors.asset_get_for_member(user=request.user, project_id=project.pk, asset_id=_int(asset_id)) if asset_id else None
    # "Revise this region" (reviews) opens this page with the comment's text, its rectangle and where to go back.
    revise = {name: _opt_int(request.POST.get(name) or request.GET.get(name)) for name in ("review", "comment")}
    revise_query = f"?review={revise['review']}&comment={revise['comment']}" if all(revise.values()) else ""
    region = _region(request.GET.get("region", ""))
    initial = {"prompt": request.GET.get("prompt") or (asset.prompt if asset else "")}
    if request.GET.get("mode") in dict(EditForm.base_fields["mode"].choices):  # type: ignore[attr-defined]
        initial["mode"] = request.GET["mode"]
    form = EditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        source = _upload(request, "image")
        if source is None and asset is not None:
            with selectors.asset_open(asset=asset) as fh:
                source = fh.read()
        try:
            if source is None:
                raise EngineValidationError("image", "choose an image to edit, or open one from the gallery")
            job = services.edit_job_create(
                project=project, actor=project.membership, source_asset=asset,
                request=EditRequest(source=source, mask=_upload(request, "mask"), **form.edit_fields()),
            )
        except EngineValidationError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, f"{exc.field}: {exc.message}")
        except QuotaExceeded as exc:
            form.add_error(None, exc)
        else:
            return redirect(reverse("studio:edit_result", args=[project.pk, job.pk]) + revise_query)
    context = {"project": project, "form": form, "asset": asset, "active_tab": "studio", "region": region,
               "revise": revise if revise_query else None}
    return render(request, "studio/edit.html", context, status=400 if form.errors else 200)


@login_required
@require_GET
def edit_result(request: HttpRequest, project_id: int, job_id: int) -> HttpResponse:
    """An edit job: its card (live progress), and source and result side by side with a before/after slider."""
    job = selectors.job_get_for_member(user=request.user, project_id=project_id, job_id=job_id)
    if not job.edit_source:
        raise Http404("Not an edit")
    revise = {name: _opt_int(request.GET.get(name)) for name in ("review", "comment")}
    context = {"project": job.project, "job": job, "active_tab": "studio",
               "revise": revise if all(revise.values()) else None}
    return render(request, "studio/edit_result.html", context)


def _opt_int(value: str | None) -> int:
    """A positive id from the query, or 0."""
    return int(value) if value and value.isdigit() and len(value) < 16 else 0


def _region(text: str) -> str:
    """A ``x,y,w,h`` rectangle from the query, as four non-negative integers, or "" (the canvas clips it)."""
    parts = text.split(",")
    if len(parts) != 4 or not all(p.strip().isdigit() and len(p.strip()) < 6 for p in parts):
        return ""
    return ",".join(str(int(p)) for p in parts)


@login_required
@require_GET
def edit_file(request: HttpRequest, project_id: int, job_id: int, which: str) -> FileResponse:
    """An edit job's stored source or mask, to the project's members only."""
    job = selectors.job_get_for_member(user=request.user, project_id=project_id, job_id=job_id)
    stored = job.edit_source if which == "source" else job.edit_mask
    if not stored:
        raise Http404("No such file")
    response = FileResponse(selectors.edit_file_open(job=job, which=which), content_type="image/png")
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=3600"
    return response
