from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from webapp.audit import selectors
from webapp.audit.forms import AuditFilterForm
from webapp.workspaces.selectors import membership_get, team_members


def _filtered(request: HttpRequest, team_id: int) -> tuple[Any, AuditFilterForm, Any]:
    membership = membership_get(user=request.user, team_id=team_id)
    team = membership.team
    form = AuditFilterForm(request.GET or None, members=list(team_members(team=team)), projects=list(team.projects.all()))
    filters = form.cleaned_data if form.is_valid() else {}
    entries = selectors.audit_list(
        membership=membership, action=filters.get("action") or "", actor_id=filters.get("actor"),
        project_id=filters.get("project"), date_from=filters.get("date_from"), date_to=filters.get("date_to"),
    )
    return membership, form, entries


@login_required
@require_GET
def team_audit(request: HttpRequest, team_id: int) -> HttpResponse:
    membership, form, entries = _filtered(request, team_id)
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    context = {"team": membership.team, "membership": membership, "form": form, "page": page}
    return render(request, "audit/team_audit.html", context)


@login_required
@require_GET
def team_audit_csv(request: HttpRequest, team_id: int) -> StreamingHttpResponse:
    membership, _form, entries = _filtered(request, team_id)
    response = StreamingHttpResponse(selectors.audit_csv_rows(entries=entries), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="audit-team-{membership.team_id}.csv"'
    return response
