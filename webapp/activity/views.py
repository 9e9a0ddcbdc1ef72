from __future__ import annotations

from functools import cache

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET

from webapp.activity import selectors
from webapp.usage import selectors as usage
from webapp.workspaces.selectors import project_get_for_member


@login_required
@require_GET
def project_activity(request: HttpRequest, project_id: int) -> HttpResponse:
    """A project's activity: finished jobs and review and export events by day (filtered by kind and person,
    paged by time), what runs now, and this month's use against the project's budget. ``?embed=1`` (the
    project's overview loads it so) renders the feed alone."""
    project = project_get_for_member(user=request.user, project_id=project_id)
    kind = request.GET.get("kind", "")[:50]
    person = request.GET.get("person", "")
    before = parse_datetime(request.GET.get("before", "")[:40]) if request.GET.get("before") else None
    items, older = selectors.activity_page(project=project, kind=kind, before=before, size=selectors.PAGE,
                                           user_id=int(person) if person.isdigit() else None)
    tz = usage.team_time_zone(team_id=project.team_id)
    members = selectors.activity_people(project=project)
    context = {
        "project": project, "active_tab": "activity", "kinds": selectors.activity_kinds(),
        "kind": kind, "person": person, "days": selectors.activity_by_day(items=items, tz=tz),
        "older": older.isoformat() if older else "", "newest": before is None,
        "members": members,
        # Read only where the page shows them (the overview's embedded feed does not): the template calls these,
        # once each (cached: every ``month.x`` in the template calls again).
        "running": cache(lambda: usage.project_running(project=project, names=dict(members))),
        "month": cache(lambda: usage.project_month_use(project=project)),
    }
    if request.GET.get("embed"):
        return render(request, "activity/_feed.html", context)
    return render(request, "activity/project_activity.html", context)
