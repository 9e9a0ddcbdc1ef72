from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from webapp.knowledge import selectors, services
from webapp.knowledge.forms import DocumentForm
from webapp.workspaces.selectors import project_get_for_member


def _index_url(project_id: int) -> str:
    return reverse("knowledge:index", kwargs={"project_id": project_id})


def _page(request: HttpRequest, project: Any, form: DocumentForm | None = None, status: int = 200) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:500]
    context = {"project": project, "documents": selectors.document_list(project=project),
               "form": form or DocumentForm(), "active_tab": "knowledge", "query": query,
               "results": selectors.passage_search(project=project, query=query) if query else []}
    return render(request, "knowledge/index.html", context, status=status)


def _form_errors(form: DocumentForm, error: ValidationError) -> None:
    for name, errors in getattr(error, "message_dict", {None: error.messages}).items():
        form.add_error(name if name in form.fields else None, errors)


@login_required
@require_GET
def index(request: HttpRequest, project_id: int) -> HttpResponse:
    return _page(request, project_get_for_member(user=request.user, project_id=project_id))


@login_required
@require_POST
def document_add(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_get_for_member(user=request.user, project_id=project_id)
    form = DocumentForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            document = services.document_add(actor=project.membership, project=project,
                                              upload=form.cleaned_data["file"], title=form.cleaned_data["title"])
        except ValidationError as error:
            _form_errors(form, error)
        else:
            return redirect(f"{_index_url(project.pk)}#document-{document.pk}")
    return _page(request, project, form, status=400)


@login_required
@require_GET
def document_status(request: HttpRequest, project_id: int, document_id: int) -> HttpResponse:
    document = selectors.document_get_for_member(user=request.user, project_id=project_id, document_id=document_id)
    return render(request, "knowledge/_document.html", {"document": document, "project": document.project})


@login_required
@require_POST
def document_replace(request: HttpRequest, project_id: int, document_id: int) -> HttpResponse:
    document = selectors.document_get_for_member(user=request.user, project_id=project_id, document_id=document_id)
    form = DocumentForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            new = services.document_replace(actor=document.project.membership, document=document,
                                            upload=form.cleaned_data["file"], title=form.cleaned_data["title"])
        except ValidationError as error:
            _form_errors(form, error)
        else:
            return redirect(f"{_index_url(project_id)}#document-{new.pk}")
    return _page(request, document.project, form, status=400)


@login_required
@require_POST
def document_delete(request: HttpRequest, project_id: int, document_id: int) -> HttpResponse:
    document = selectors.document_get_for_member(user=request.user, project_id=project_id, document_id=document_id)
    services.document_delete(actor=document.project.membership, document=document)
    messages.success(request, f"Deleted {document.title}.")
    return redirect(_index_url(project_id))


@login_required
@require_POST
def document_stop(request: HttpRequest, project_id: int, document_id: int) -> HttpResponse:
    document = selectors.document_get_for_member(user=request.user, project_id=project_id, document_id=document_id)
    services.document_stop(actor=document.project.membership, document=document)
    document.refresh_from_db()
    if request.headers.get("HX-Request"):
        return render(request, "knowledge/_document.html", {"document": document, "project": document.project})
    return redirect(f"{_index_url(project_id)}#document-{document.pk}")
