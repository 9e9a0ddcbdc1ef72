from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from webapp.usage import charts, selectors, services
from webapp.usage.forms import BudgetForm, TimeZoneForm, UsageFilterForm
from webapp.usage.models import Metric
from webapp.workspaces.permissions import membership_may
from webapp.workspaces.selectors import membership_get


def _report(request: HttpRequest, team_id: int) -> tuple[Any, UsageFilterForm, selectors.UsageReport]:
    membership = membership_get(user=request.user, team_id=team_id)
    form = UsageFilterForm(request.GET or None, choices=selectors.usage_member_choices(membership=membership))
    filters = form.cleaned_data if form.is_valid() else {}
    report = selectors.usage_report(membership=membership, days=filters.get("days") or 30, filters=filters)
    return membership, form, report


@login_required
@require_GET
def team_usage(request: HttpRequest, team_id: int) -> HttpResponse:
    membership, form, report = _report(request, team_id)
    metric = (form.cleaned_data.get("metric") if form.is_valid() else "") or Metric.TOKENS
    chart = charts.bar_chart(points=report.per_day, metric=metric)
    context = {"team": membership.team, "membership": membership, "form": form, "report": report, "chart": chart,
               "metric_label": Metric(metric).label}
    return render(request, "usage/team_usage.html", context)


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv(rows: Iterator[list[Any]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    for row in rows:
        yield writer.writerow(row)


@login_required
@require_GET
def team_usage_csv(request: HttpRequest, team_id: int) -> StreamingHttpResponse:
    membership, _form, report = _report(request, team_id)
    response = StreamingHttpResponse(_csv(selectors.usage_csv_rows(report=report)), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="usage-team-{membership.team_id}.csv"'
    return response


def _budget_target(membership: Any, scope: str) -> dict[str, Any]:
    """The service's arguments for ``scope`` ("team", "project:<id>", "member:<user id>"); 404 outside the team."""
    kind, _, raw = scope.partition(":")
    if kind == "team" and not raw:
        return {}
    if kind in ("project", "member") and raw.isdigit():
        if kind == "project":
            project = membership.team.projects.filter(pk=int(raw)).first()
            if project is None:
                raise Http404("No such project")
            return {"project": project}
        return {"user_id": int(raw)}
    raise Http404("No such budget")


@login_required
@require_http_methods(["GET", "POST"])
def team_budgets(request: HttpRequest, team_id: int) -> HttpResponse:
    membership = membership_get(user=request.user, team_id=team_id)
    errors: dict[str, Any] = {}
    if request.method == "POST":
        try:
            if "time_zone" in request.POST:
                services.team_time_zone_set(actor=membership, time_zone=request.POST.get("time_zone", ""))
            else:
                form = BudgetForm(request.POST)
                if not form.is_valid():
                    raise ValidationError(form.errors.as_data())  # type: ignore[arg-type]
                data = form.cleaned_data
                services.budget_set(actor=membership, tokens=data["tokens"], images=data["images"],
                                    compute_seconds=data["compute_seconds"],
                                    **_budget_target(membership, data["scope"]))
        except ValidationError as exc:
            errors = {"scope": request.POST.get("scope", "time_zone"),
                      "messages": exc.messages}
        else:
            return redirect("usage:team_budgets", team_id=team_id)
    context = {**selectors.budgets_page(membership=membership), "team": membership.team, "membership": membership,
               "may_set": membership_may(actor=membership, action="usage.budgets"), "errors": errors,
               "tz_form": TimeZoneForm(initial={"time_zone": selectors.team_time_zone(team_id=team_id).key})}
    return render(request, "usage/team_budgets.html", context, status=400 if errors else 200)


