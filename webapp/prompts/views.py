from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from webapp.core.http import HtmxHttpRequest
from webapp.prompts import selectors
from webapp.prompts.forms import HistoryFilterForm
from webapp.workspaces.permissions import membership_may
from webapp.workspaces.selectors import project_get_for_member, team_members

# Reusing a prompt opens the page that sends it again: offered to those who may.
REUSE_ACTIONS = {"chat": "chat.send", "image": "studio.create"}


@login_required
def history(request: HtmxHttpRequest, project_id: int) -> HttpResponse:
    project = project_get_for_member(user=request.user, project_id=project_id)
    form = HistoryFilterForm(request.GET or None, members=list(team_members(team=project.team)))
    filters = form.cleaned_data if form.is_valid() else {}
    records = selectors.prompt_history_list(
        project=project,
        query=filters.get("q") or "",
        author_id=filters.get("author"),
        kind=filters.get("kind") or None,
        date_from=filters.get("date_from"),
        date_to=filters.get("date_to"),
    )
    page = Paginator(records, 25).get_page(request.GET.get("page"))
    may = {kind: membership_may(actor=project.membership, action=action) for kind, action in REUSE_ACTIONS.items()}
    rows = [(record, selectors.prompt_reuse_url(record=record) if may.get(record.kind) else None) for record in page]
    context = {"project": project, "form": form, "page": page, "rows": rows, "active_tab": "history"}
    template = "prompts/_history_results.html" if request.htmx else "prompts/history.html"
    return render(request, template, context)


@login_required
def reuse(request: HttpRequest, project_id: int, prompt_id: int) -> HttpResponse:
    record = selectors.prompt_get_for_member(user=request.user, project_id=project_id, prompt_id=prompt_id)
    url = selectors.prompt_reuse_url(record=record)
    return redirect(url or record.project.get_absolute_url())
