from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.forms import Form
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from generation.errors import ValidationError as EngineValidationError
from webapp.chat.markdown import render_markdown
from webapp.reviews import selectors, services
from webapp.reviews.forms import CommentForm, ExportForm, IterateForm, ReviewRequestForm, VerdictForm
from webapp.reviews.kinds import asset_resolve
from webapp.reviews.models import AssetKind, ReviewState
from webapp.usage import selectors as usage_selectors
from webapp.workspaces.permissions import membership_may
from webapp.workspaces.selectors import project_get_for_member, team_members


def _form_errors(form: Form, error: ValidationError) -> None:
    """Put a service's ValidationError on the form: on its field when the form has one."""
    if hasattr(error, "error_dict"):
        for name, errors in error.message_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, error.messages)


def _detail_context(request: HttpRequest, review: Any, **forms: Form) -> dict[str, Any]:
    membership = review.project.membership
    asset = selectors.review_asset(review=review)
    return {
        "project": review.project,
        "review": review,
        "asset": asset,
        "asset_html": "" if asset.is_image else render_markdown(asset.obj.text),
        "chain": selectors.review_chain(review=review),
        "verdicts": selectors.verdicts_current(review=review),
        "history": selectors.verdict_history(review=review),
        "comments": selectors.comment_tree(review=review),
        "reviewers": list(review.reviewers.all()),
        "may_verdict": services.verdict_may_give(review=review, actor=membership),
        "may_withdraw": review.is_open and membership_may(
            actor=membership, action="reviews.withdraw", owner_id=review.requested_by_id
        ),
        "may_iterate": (review.state == ReviewState.CHANGES_REQUESTED and asset.is_image
                        and membership_may(actor=membership, action="reviews.iterate")),
        "may_revise": (review.is_open and asset.is_image
                       and membership_may(actor=membership, action="reviews.iterate")),
        "verdict_form": forms.get("verdict_form") or VerdictForm(),
        "comment_form": forms.get("comment_form") or CommentForm(),
        "iterate_form": forms.get("iterate_form") or IterateForm(initial={"prompt": getattr(asset.obj, "prompt", "")}),
        "active_tab": "reviews",
    }


@login_required
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    context = {"waiting": selectors.inbox_waiting(user=request.user),
               "submitted": selectors.inbox_submitted(user=request.user),
               # Budgets at 80% or used up, for the teams' owners and admins (webapp.usage).
               "budget_notices": usage_selectors.budget_notices_for_admins(user=request.user)}
    return render(request, "reviews/inbox.html", context)


@login_required
@require_GET
def project_reviews(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_get_for_member(user=request.user, project_id=project_id)
    state = request.GET.get("state", "")
    context = {
        "project": project,
        "reviews": selectors.review_list(project=project, state=state if state in ReviewState.values else ""),
        "states": ReviewState.choices,
        "state": state,
        "exports": selectors.export_list(project=project),
        "active_tab": "reviews",
    }
    return render(request, "reviews/project.html", context)


def _ask_form(request: HttpRequest, project: Any, ref: Any, data: Any = None) -> ReviewRequestForm:
    return ReviewRequestForm(data, members=list(team_members(team=project.team)), exclude_user_id=ref.author_id)


@login_required
@require_GET
def asset_panel(request: HttpRequest, project_id: int, kind: str, asset_id: int) -> HttpResponse:
    """The review box of an asset's page: its state and versions, or a form to ask for review."""
    project = project_get_for_member(user=request.user, project_id=project_id)
    ref = asset_resolve(project=project, kind=kind, asset_id=asset_id)
    review = selectors.review_for_asset(project=project, kind=kind, asset_id=asset_id)
    context = {
        "project": project, "asset": ref, "review": review,
        "chain": selectors.review_chain(review=review) if review else [],
        "form": _ask_form(request, project, ref),
    }
    return render(request, "reviews/_asset_panel.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def review_ask(request: HttpRequest, project_id: int, kind: str, asset_id: int) -> HttpResponse:
    """The page to ask for review of any kind of asset (chat replies link here); an open review opens instead."""
    project = project_get_for_member(user=request.user, project_id=project_id)
    ref = asset_resolve(project=project, kind=kind, asset_id=asset_id)
    if request.method == "GET":
        review = selectors.review_for_asset(project=project, kind=kind, asset_id=asset_id)
        if review is not None and review.is_open:
            return redirect(review)
        context = {"project": project, "asset": ref, "form": _ask_form(request, project, ref)}
        return render(request, "reviews/ask.html", context)
    form = _ask_form(request, project, ref, request.POST)
    if form.is_valid():
        try:
            reviews = services.review_request_create(
                actor=project.membership, project=project, kind=kind, asset_ids=[ref.id],
                reviewer_ids=form.cleaned_data["reviewers"], anyone=form.cleaned_data["anyone"],
                note=form.cleaned_data["note"],
            )
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, "Review requested.")
            return redirect(reviews[0])
    context = {"project": project, "asset": ref, "review": None, "chain": [], "form": form, "standalone": True}
    return render(request, "reviews/ask.html", context, status=400)


@login_required
@require_http_methods(["GET", "POST"])
def review_ask_images(request: HttpRequest, project_id: int) -> HttpResponse:
    """Ask for review of a selection of the gallery's images: one round, one request per image."""
    project = project_get_for_member(user=request.user, project_id=project_id)
    form = ReviewRequestForm(request.POST or None, members=list(team_members(team=project.team)))
    if request.method == "POST" and form.is_valid():
        try:
            reviews = services.review_request_create(
                actor=project.membership, project=project, kind=AssetKind.IMAGE,
                asset_ids=[int(v) for v in request.POST.getlist("assets") if v.isdigit()],
                reviewer_ids=form.cleaned_data["reviewers"], anyone=form.cleaned_data["anyone"],
                note=form.cleaned_data["note"],
            )
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, f"Asked for review of {len(reviews)} image{'s' if len(reviews) != 1 else ''}.")
            return redirect(project_reviews_url(project.pk))
    context = {"project": project, "form": form, "images": selectors.images_not_in_review(project=project),
               "chosen": set(request.POST.getlist("assets")), "active_tab": "reviews"}
    return render(request, "reviews/ask_images.html", context, status=400 if request.method == "POST" else 200)


@login_required
@require_GET
def review_detail(request: HttpRequest, project_id: int, review_id: int) -> HttpResponse:
    review = selectors.review_get_for_member(user=request.user, project_id=project_id, review_id=review_id)
    return render(request, "reviews/detail.html", _detail_context(request, review))


@login_required
@require_POST
def review_verdict(request: HttpRequest, project_id: int, review_id: int) -> HttpResponse:
    review = selectors.review_get_for_member(user=request.user, project_id=project_id, review_id=review_id)
    form = VerdictForm(request.POST)
    if form.is_valid():
        try:
            services.verdict_give(actor=review.project.membership, review=review, decision=form.cleaned_data["decision"],
                                  comment=form.cleaned_data["comment"])
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            return redirect(review)
    return render(request, "reviews/detail.html", _detail_context(request, review, verdict_form=form), status=400)


@login_required
@require_POST
def review_comment(request: HttpRequest, project_id: int, review_id: int) -> HttpResponse:
    review = selectors.review_get_for_member(user=request.user, project_id=project_id, review_id=review_id)
    form = CommentForm(request.POST)
    if form.is_valid():
        parent_id = form.cleaned_data["parent"]
        parent = selectors.comment_get(review=review, comment_id=parent_id) if parent_id else None
        try:
            services.comment_add(actor=review.project.membership, review=review, text=form.cleaned_data["text"],
                                 parent=parent, region=form.cleaned_data["region"])
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            return redirect(review)
    return render(request, "reviews/detail.html", _detail_context(request, review, comment_form=form), status=400)


@login_required
@require_POST
def comment_resolve(request: HttpRequest, project_id: int, review_id: int, comment_id: int) -> HttpResponse:
    review = selectors.review_get_for_member(user=request.user, project_id=project_id, review_id=review_id)
    comment = selectors.comment_get(review=review, comment_id=comment_id)
    services.comment_set_resolved(actor=review.project.membership, comment=comment,
                                  resolved=request.POST.get("resolved") != "0")
    return redirect(review)


@login_required
@require_POST
def review_withdraw(request: HttpRequest, project_id: int, review_id: int) -> HttpResponse:
    review = selectors.review_get_for_member(user=request.user, project_id=project_id, review_id=review_id)
    try:
        services.review_withdraw(actor=review.project.membership, review=review)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect(review)


@login_required
@require_POST
def review_iterate(request: HttpRequest, project_id: int, review_id: int) -> HttpResponse:
    review = selectors.review_get_for_member(user=request.user, project_id=project_id, review_id=review_id)
    form = IterateForm(request.POST)
    if form.is_valid():
        try:
            job = services.review_iterate(actor=review.project.membership, review=review,
                                          vary=form.cleaned_data["mode"] == "vary", prompt=form.cleaned_data["prompt"])
        except ValidationError as exc:
            _form_errors(form, exc)
        except EngineValidationError as exc:
            form.add_error("prompt" if exc.field == "prompt" else None, exc.message)
        else:
            messages.success(request, f"Making the next version (job #{job.pk}); the review moves to it when it is done.")
            return redirect(review)
    return render(request, "reviews/detail.html", _detail_context(request, review, iterate_form=form), status=400)


@login_required
@require_POST
def export_create(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_get_for_member(user=request.user, project_id=project_id)
    form = ExportForm(request.POST)
    if not form.is_valid():
        raise Http404("No such review round")
    round_id = form.cleaned_data["round"]
    review_round = selectors.round_get(project=project, round_id=round_id) if round_id else None
    try:
        export = services.export_create(actor=project.membership, project=project, review_round=review_round)
    except ValidationError as error:  # past the project's cap or the member's hourly rate: nothing queued
        messages.error(request, " ".join(error.messages))
        return redirect(project_reviews_url(project.pk))
    return redirect(f"{project_reviews_url(project.pk)}#export-{export.pk}")


def project_reviews_url(project_id: int) -> str:
    from django.urls import reverse

    return reverse("reviews:project", kwargs={"project_id": project_id})


@login_required
@require_GET
def export_status(request: HttpRequest, project_id: int, export_id: int) -> HttpResponse:
    export = selectors.export_get_for_member(user=request.user, project_id=project_id, export_id=export_id)
    return render(request, "reviews/_export.html", {"export": export, "project": export.project})


@login_required
@require_GET
def export_download(request: HttpRequest, project_id: int, export_id: int) -> FileResponse:
    export = selectors.export_get_for_member(user=request.user, project_id=project_id, export_id=export_id)
    if not export.file:
        raise Http404("This export is not ready")
    services.export_record_download(actor=request.user, export=export)
    response = FileResponse(default_storage.open(export.file, "rb"), content_type="application/zip",
                            as_attachment=True, filename=export.download_name)
    response["X-Content-Type-Options"] = "nosniff"
    return response




@login_required
@require_POST
def comment_revise(request: HttpRequest, project_id: int, review_id: int, comment_id: int) -> HttpResponse:
    """"Revise this region": open the studio's edit mode on the reviewed image, the comment's rectangle as mask."""
    review = selectors.review_get_for_member(user=request.user, project_id=project_id, review_id=review_id)
    comment = selectors.comment_get(review=review, comment_id=comment_id)
    try:
        url = services.revision_start(actor=review.project.membership, review=review, comment=comment)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(review)
    return redirect(url)


@login_required
@require_POST
def comment_revision(request: HttpRequest, project_id: int, review_id: int, comment_id: int) -> HttpResponse:
    """Submit an edit's image (``asset``) as the review's next version, resolving the comment by it."""
    review = selectors.review_get_for_member(user=request.user, project_id=project_id, review_id=review_id)
    comment = selectors.comment_get(review=review, comment_id=comment_id)
    try:
        asset_id = int(request.POST.get("asset", ""))
    except ValueError:
        messages.error(request, "asset: choose the image to submit.")
        return redirect(review)
    try:
        new = services.revision_submit(actor=review.project.membership, review=review, comment=comment,
                                       asset_id=asset_id)
    except ValidationError as exc:
        messages.error(request, " ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
                       if hasattr(exc, "error_dict") else " ".join(exc.messages))
        return redirect(review)
    return redirect(new)
