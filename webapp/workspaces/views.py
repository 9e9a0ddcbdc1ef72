from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from webapp.accounts.views import SIGNUP_INVITE_SESSION_KEY
from webapp.workspaces import selectors, services
from webapp.workspaces.forms import InviteForm, ProjectForm, RoleForm, TeamForm
from webapp.workspaces.models import Role


def _flash_errors(request: HttpRequest, error: ValidationError) -> None:
    for message in error.messages:
        messages.error(request, message)


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    teams = selectors.team_list_for_user(user=request.user)
    return render(request, "workspaces/dashboard.html", {"teams": teams})


@login_required
def team_create(request: HttpRequest) -> HttpResponse:
    form = TeamForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        team = services.team_create(name=form.cleaned_data["name"], owner=request.user)
        messages.success(request, f"Team “{team.name}” created. Invite your teammates below.")
        return redirect(team)
    return render(request, "workspaces/team_form.html", {"form": form})


@login_required
@require_GET
def team_detail(request: HttpRequest, team_id: int) -> HttpResponse:
    membership = selectors.membership_get(user=request.user, team_id=team_id)
    team = membership.team
    context = {
        "team": team,
        "membership": membership,
        "members": selectors.team_members(team=team),
        "invites": selectors.team_open_invites(team=team, viewer=membership),
        "projects": team.projects.all(),
        "invite_form": InviteForm(),
        "roles": Role.choices,
    }
    return render(request, "workspaces/team_detail.html", context)


@login_required
@require_POST
def invite_create(request: HttpRequest, team_id: int) -> HttpResponse:
    membership = selectors.membership_get(user=request.user, team_id=team_id)
    form = InviteForm(request.POST)
    if form.is_valid():
        invite = services.invite_create(actor=membership, role=form.cleaned_data["role"])
        messages.success(request, f"Invite link created: {request.build_absolute_uri(invite.get_absolute_url())}")
    else:
        messages.error(request, "Choose a role for the invite.")
    return redirect(membership.team)


@login_required
@require_POST
def invite_revoke(request: HttpRequest, team_id: int, invite_id: int) -> HttpResponse:
    membership = selectors.membership_get(user=request.user, team_id=team_id)
    invite = selectors.team_invite_get(team=membership.team, invite_id=invite_id)
    services.invite_revoke(actor=membership, invite=invite)
    messages.success(request, "Invite revoked.")
    return redirect(membership.team)


def invite_accept(request: HttpRequest, token: str) -> HttpResponse:
    invite = selectors.invite_get_by_token(token=token)
    if not request.user.is_authenticated:
        # New people sign up first and come straight back here (invite-only signup lets them in).
        if invite.is_usable and selectors.invite_creator_may_grant(invite=invite):
            request.session[SIGNUP_INVITE_SESSION_KEY] = invite.pk
        return render(request, "workspaces/invite_anonymous.html", {"invite": invite, "next": request.path})
    if request.method == "POST":
        try:
            membership = services.invite_accept(invite=invite, user=request.user)
        except ValidationError as error:
            _flash_errors(request, error)
            return redirect("workspaces:dashboard")
        messages.success(request, f"Welcome to {membership.team.name}.")
        return redirect(membership.team)
    return render(request, "workspaces/invite_accept.html", {"invite": invite})


@login_required
@require_POST
def member_role(request: HttpRequest, team_id: int, membership_id: int) -> HttpResponse:
    actor = selectors.membership_get(user=request.user, team_id=team_id)
    target = selectors.team_member_get(team=actor.team, membership_id=membership_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a valid role.")
        return redirect(actor.team)
    try:
        services.membership_change_role(actor=actor, membership=target, role=form.cleaned_data["role"])
        messages.success(request, f"{target.user} is now {target.get_role_display().lower()}.")
    except ValidationError as error:
        _flash_errors(request, error)
    return redirect(actor.team)


@login_required
@require_POST
def member_remove(request: HttpRequest, team_id: int, membership_id: int) -> HttpResponse:
    actor = selectors.membership_get(user=request.user, team_id=team_id)
    target = selectors.team_member_get(team=actor.team, membership_id=membership_id)
    try:
        services.membership_remove(actor=actor, membership=target)
    except ValidationError as error:
        _flash_errors(request, error)
        return redirect(actor.team)
    if target.pk == actor.pk:
        messages.success(request, f"You left {actor.team.name}.")
        return redirect("workspaces:dashboard")
    messages.success(request, f"{target.user} was removed from the team.")
    return redirect(actor.team)


@login_required
def project_create(request: HttpRequest, team_id: int) -> HttpResponse:
    membership = selectors.membership_get(user=request.user, team_id=team_id)
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            project = services.project_create(actor=membership, **form.cleaned_data)
        except ValidationError as error:
            # A ValidationError keyed by field lands next to that field.
            form.add_error(None, error)
        else:
            return redirect(project)
    return render(request, "workspaces/project_form.html", {"form": form, "team": membership.team})


@login_required
@require_GET
def project_detail(request: HttpRequest, project_id: int) -> HttpResponse:
    project = selectors.project_get_for_member(user=request.user, project_id=project_id)
    return render(request, "workspaces/project_detail.html", {"project": project, "active_tab": "overview"})


@login_required
def project_settings(request: HttpRequest, project_id: int) -> HttpResponse:
    project = selectors.project_get_for_member(user=request.user, project_id=project_id)
    form = ProjectForm(request.POST or None, initial={"name": project.name, "description": project.description})
    if request.method == "POST" and form.is_valid():
        try:
            services.project_update(project=project, actor=project.membership, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, "Project saved.")
            return redirect(project)
    return render(
        request, "workspaces/project_settings.html", {"project": project, "form": form, "active_tab": "settings"}
    )


@login_required
@require_POST
def project_delete(request: HttpRequest, project_id: int) -> HttpResponse:
    project = selectors.project_get_for_member(user=request.user, project_id=project_id)
    team = project.team
    services.project_delete(project=project, actor=project.membership)
    messages.success(request, f"Project “{project.name}” deleted.")
    return redirect(reverse("workspaces:team_detail", kwargs={"team_id": team.pk}))


@login_required
@require_POST
def team_two_factor(request: HttpRequest, team_id: int) -> HttpResponse:
    membership = selectors.membership_get(user=request.user, team_id=team_id)
    required = request.POST.get("required") == "on"
    try:
        services.team_two_factor_set(actor=membership, required=required)
    except ValidationError as error:
        _flash_errors(request, error)
    else:
        messages.success(request, "Two-factor is now required of every member." if required
                         else "Two-factor is no longer required.")
    return redirect("workspaces:team_detail", team_id=team_id)
