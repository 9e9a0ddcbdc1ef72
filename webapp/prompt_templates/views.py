"""Template pages. Each view fetches through a selector scoped to the user's membership,
calls one service, and renders a page or, for htmx, a partial."""
from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from webapp.core.http import HtmxHttpRequest
from webapp.prompt_templates import selectors, services
from webapp.prompt_templates.forms import FORM_FIELD_NAMES, TemplateForm, VariablesForm
from webapp.prompt_templates.models import PromptTemplate, TemplateKind
from webapp.prompt_templates.variables import VariableValueError
from webapp.prompts.selectors import prompt_get_for_member
from webapp.workspaces.selectors import project_get_for_member

MAX_IMPORT_BYTES = 2 * 1024 * 1024


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def add_service_errors(form: forms.Form, exc: ValidationError, *, renames: dict[str, str] | None = None) -> None:
    """Put a service's ValidationError next to the form's field of the same name (else on top)."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for key, errors in exc.error_dict.items():
        name = (renames or {}).get(key, key)
        for error in errors:
            form.add_error(name if name in form.fields else None, error if name in form.fields else
                           ValidationError(f"{key}: {' '.join(error.messages)}"))


@login_required
@require_GET
def template_list(request: HtmxHttpRequest, project_id: int) -> HttpResponse:
    project = project_get_for_member(user=request.user, project_id=project_id)
    kind = request.GET.get("kind") if request.GET.get("kind") in TemplateKind.values else None
    templates = selectors.template_list_for_project(project=project, kind=kind)
    context = {"project": project, "templates": templates, "kind": kind, "active_tab": "templates"}
    return render(request, "prompt_templates/list.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def template_create(request: HtmxHttpRequest, project_id: int) -> HttpResponse:
    project = project_get_for_member(user=request.user, project_id=project_id)
    initial: dict[str, Any] = {}
    source_id = _int(request.GET.get("from_prompt"))
    if source_id is not None:
        record = prompt_get_for_member(user=request.user, project_id=project.pk, prompt_id=source_id)
        start = selectors.template_initial_from_prompt(record=record)
        initial = {"kind": start["kind"], "body": start["body"],
                   **TemplateForm.initial_from(kind=start["kind"], settings=start["settings"])}
    form = TemplateForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            template = services.template_create(
                actor=project.membership, project=project, name=data["name"], command=data["command"],
                kind=data["kind"], body=data["body"], settings=form.settings_for(data["kind"]),
                description=data["description"], shared_with_team=data["shared_with_team"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc, renames=FORM_FIELD_NAMES[data["kind"]])
        else:
            flash.success(request, f"Created /{template.command}.")
            return redirect("prompt_templates:detail", project_id=project.pk, template_id=template.pk)
    context = {"project": project, "form": form, "active_tab": "templates", "editing": None}
    return render(request, "prompt_templates/form.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def template_edit(request: HtmxHttpRequest, project_id: int, template_id: int) -> HttpResponse:
    template = selectors.template_get_for_member(user=request.user, project_id=project_id, template_id=template_id)
    project = template.viewing_project  # type: ignore[attr-defined]
    latest = template.versions.order_by("-number").first()
    initial = {
        "name": template.name, "command": template.command, "description": template.description,
        "shared_with_team": template.shared_with_team, "body": latest.body if latest else "",
        **TemplateForm.initial_from(kind=template.kind, settings=latest.settings if latest else {}),
    }
    form = TemplateForm(request.POST or None, initial=initial, editing=True)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            version = services.template_save(
                actor=project.membership, template=template, body=data["body"],
                settings=form.settings_for(template.kind), note=data["note"], name=data["name"],
                description=data["description"], command=data["command"], shared_with_team=data["shared_with_team"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc, renames=FORM_FIELD_NAMES[template.kind])
        else:
            if version is None:
                flash.success(request, "Saved. The text and settings did not change, so no new version.")
            else:
                flash.success(request, f"Saved as version {version.number}. Publish it to offer it.")
            return redirect("prompt_templates:detail", project_id=project.pk, template_id=template.pk)
    context = {"project": project, "form": form, "template": template, "editing": template, "active_tab": "templates"}
    return render(request, "prompt_templates/form.html", context)


@login_required
@require_POST
def template_delete(request: HtmxHttpRequest, project_id: int, template_id: int) -> HttpResponse:
    template = selectors.template_get_for_member(user=request.user, project_id=project_id, template_id=template_id)
    services.template_delete(actor=template.viewing_project.membership, template=template)  # type: ignore[attr-defined]
    flash.success(request, f"Deleted /{template.command}.")
    return redirect("prompt_templates:list", project_id=project_id)


@login_required
@require_GET
def template_detail(request: HtmxHttpRequest, project_id: int, template_id: int) -> HttpResponse:
    template = selectors.template_get_for_member(user=request.user, project_id=project_id, template_id=template_id)
    project = template.viewing_project  # type: ignore[attr-defined]
    versions = selectors.version_list_with_usage(template=template)
    made = [(version, selectors.version_outputs(version=version, project=project, limit=8)) for version in versions]
    context = {"project": project, "template": template, "versions": versions, "made": made, "active_tab": "templates"}
    return render(request, "prompt_templates/detail.html", context)


@login_required
@require_GET
def version_detail(request: HtmxHttpRequest, project_id: int, template_id: int, number: int) -> HttpResponse:
    template = selectors.template_get_for_member(user=request.user, project_id=project_id, template_id=template_id)
    project = template.viewing_project  # type: ignore[attr-defined]
    version = selectors.version_get(template=template, number=number)
    context = {
        "project": project, "template": template, "version": version,
        "variables": selectors.version_parsed(version=version).variables,
        "settings_json": json.dumps(version.settings, indent=2, sort_keys=True),
        "outputs": selectors.version_outputs(version=version, project=project),
        "active_tab": "templates",
    }
    return render(request, "prompt_templates/version.html", context)


@login_required
@require_POST
def version_publish(request: HtmxHttpRequest, project_id: int, template_id: int, number: int) -> HttpResponse:
    template = selectors.template_get_for_member(user=request.user, project_id=project_id, template_id=template_id)
    version = selectors.version_get(template=template, number=number)
    services.template_publish(actor=template.viewing_project.membership, version=version)  # type: ignore[attr-defined]
    flash.success(request, f"Version {version.number} of /{template.command} is now published.")
    return redirect("prompt_templates:detail", project_id=project_id, template_id=template.pk)


@login_required
@require_GET
def template_diff(request: HtmxHttpRequest, project_id: int, template_id: int) -> HttpResponse:
    template = selectors.template_get_for_member(user=request.user, project_id=project_id, template_id=template_id)
    numbers = list(template.versions.order_by("-number").values_list("number", flat=True))
    left_number = _int(request.GET.get("a")) or (numbers[1] if len(numbers) > 1 else numbers[0])
    right_number = _int(request.GET.get("b")) or numbers[0]
    diff = selectors.version_diff(
        left=selectors.version_get(template=template, number=left_number),
        right=selectors.version_get(template=template, number=right_number),
    )
    context = {"project": template.viewing_project, "template": template, "diff": diff, "numbers": numbers,  # type: ignore[attr-defined]
               "active_tab": "templates"}
    return render(request, "prompt_templates/diff.html", context)


@login_required
@require_GET
def template_menu(request: HtmxHttpRequest, project_id: int) -> HttpResponse:
    """The list that ``/`` in the composer (or the studio's picker) opens: published templates of a kind."""
    project = project_get_for_member(user=request.user, project_id=project_id)
    kind = request.GET.get("kind") if request.GET.get("kind") in TemplateKind.values else TemplateKind.CHAT
    templates = selectors.template_list_for_project(project=project, kind=kind, query=request.GET.get("q", "")[:40])
    return render(request, "prompt_templates/_menu.html", {"project": project, "templates": templates[:20]})


def _use_form_version(request: HtmxHttpRequest, template: PromptTemplate, number: Any) -> Any:
    if _int(number) is not None:
        return selectors.version_get(template=template, number=_int(number))  # type: ignore[arg-type]
    if template.published_version is None:
        raise Http404("This template has no published version")
    version = template.published_version
    version.template = template
    return version


@login_required
@require_GET
def template_use_form(request: HtmxHttpRequest, project_id: int, template_id: int) -> HttpResponse:
    """The variables form of the published version (or ``?version=N``): an htmx partial."""
    template = selectors.template_get_for_member(user=request.user, project_id=project_id, template_id=template_id)
    version = _use_form_version(request, template, request.GET.get("version"))
    form = VariablesForm(initial={"version": version.number}, parsed=selectors.version_parsed(version=version),
                         image=template.kind == TemplateKind.IMAGE)
    context = {"project": template.viewing_project, "template": template, "version": version, "form": form}  # type: ignore[attr-defined]
    return render(request, "prompt_templates/_use_form.html", context)


@login_required
@require_POST
def template_render(request: HtmxHttpRequest, project_id: int, template_id: int) -> HttpResponse:
    """Render the variables: the filled text and settings for the page's form, or the form with errors."""
    template = selectors.template_get_for_member(user=request.user, project_id=project_id, template_id=template_id)
    project = template.viewing_project  # type: ignore[attr-defined]
    version = _use_form_version(request, template, request.POST.get("version"))
    is_image = template.kind == TemplateKind.IMAGE
    form = VariablesForm(request.POST, parsed=selectors.version_parsed(version=version), image=is_image)
    context: dict[str, Any] = {"project": project, "template": template, "version": version, "form": form}
    if form.is_valid():
        try:
            fill = selectors.version_fill(version=version, values=form.raw_values(), user=request.user,
                                          project=project, prompt=form.cleaned_data.get("prompt"))
        except VariableValueError as exc:
            for name, message in exc.errors.items():
                form.add_error("prompt" if name == "prompt" else f"v-{name}", message)
        else:
            context["fill_json"] = json.dumps({"fields": fill.fields, "template_use": fill.template_use})
            if not request.htmx:
                return JsonResponse({"fields": fill.fields, "template_use": fill.template_use})
            return render(request, "prompt_templates/_filled.html", context)
    return render(request, "prompt_templates/_use_form.html", context)


@login_required
@require_GET
def templates_export(request: HtmxHttpRequest, project_id: int) -> HttpResponse:
    project = project_get_for_member(user=request.user, project_id=project_id)
    published_only = request.GET.get("published_only") in ("1", "on", "true")
    data = selectors.templates_export(project=project, published_only=published_only)
    response = JsonResponse(data, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="atelier-templates-{project.pk}.json"'
    return response


class ImportForm(forms.Form):
    file = forms.FileField(required=False, help_text="A JSON export of Atelier templates.")
    payload = forms.CharField(required=False, widget=forms.HiddenInput)


@login_required
@require_http_methods(["GET", "POST"])
def templates_import(request: HtmxHttpRequest, project_id: int) -> HttpResponse:
    """Upload shows the plan (what would be created, what collides); confirming writes it."""
    project = project_get_for_member(user=request.user, project_id=project_id)
    form = ImportForm(request.POST or None, request.FILES or None)
    context: dict[str, Any] = {"project": project, "form": form, "active_tab": "templates"}
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data.get("file")
        raw = upload.read(MAX_IMPORT_BYTES + 1) if upload else (form.cleaned_data.get("payload") or "").encode()
        try:
            if len(raw) > MAX_IMPORT_BYTES:
                raise ValueError("too big")
            data = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: JSON nested past the parser's stack
            data = None
        # The plan is the import's first step: it refuses a role that may not import (403), before anything else.
        plan = services.templates_import_plan(actor=project.membership, project=project, data=data)
        if data is None:
            form.add_error("file", f"Upload a JSON export of at most {MAX_IMPORT_BYTES // 1024 // 1024} MB.")
            return render(request, "prompt_templates/import.html", context, status=400)
        if "confirm" in request.POST:
            try:
                created = services.templates_import(actor=project.membership, project=project, data=data)
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                flash.success(request, f"Imported {len(created)} template(s).")
                return redirect("prompt_templates:list", project_id=project.pk)
        context["plan"] = plan
        context["payload"] = json.dumps(data)
        if plan.errors or form.errors:
            return render(request, "prompt_templates/import.html", context, status=400)
    return render(request, "prompt_templates/import.html", context)
