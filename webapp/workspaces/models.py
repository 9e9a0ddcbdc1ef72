from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


ROLE_RANK = {Role.VIEWER: 0, Role.MEMBER: 1, Role.ADMIN: 2, Role.OWNER: 3}


class Team(models.Model):
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)
    # Members without two-factor are sent to set it up before they reach the team (middleware.py).
    require_two_factor = models.BooleanField(default=False)
    members: models.ManyToManyField = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="teams"
    )

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("workspaces:team_detail", kwargs={"team_id": self.pk})


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField(auto_now_add=True)
    # Granted by ATELIER_OIDC_ROLE_MAP (webapp/workspaces/sso.py): the map changes and removes only these.
    granted_by_sso = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="unique_team_member")]
        ordering = ["joined_at", "id"]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"

    def has_role(self, minimum: str) -> bool:
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(minimum)]

    @property
    def can_write(self) -> bool:
        """Members and above create and change project content; viewers only read.

        For templates that show or hide a link. What a role may do is decided by
        ``webapp.workspaces.permissions`` (the services ask it), never by this.
        """
        return self.has_role(Role.MEMBER)

    @property
    def can_manage(self) -> bool:
        """Admins and owners invite people and change members (for templates; see ``can_write``)."""
        return self.has_role(Role.ADMIN)


def _invite_token() -> str:
    return secrets.token_urlsafe(24)


def _invite_expiry():
    return timezone.now() + timedelta(hours=settings.INVITE_TTL_HOURS)


class Invite(models.Model):
    """A single-use link that adds its holder to a team with a role until it expires."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invites")
    token = models.CharField(max_length=64, unique=True, default=_invite_token)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(default=_invite_expiry)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Invite to {self.team} as {self.role}"

    def get_absolute_url(self) -> str:
        return reverse("workspaces:invite_accept", kwargs={"token": self.token})

    @property
    def is_usable(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > timezone.now()


class Project(models.Model):
    # Set by selectors.project_get_for_member: the viewing user's membership.
    membership: Membership

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="projects")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, max_length=2000)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="unique_project_name_in_team")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("workspaces:project_detail", kwargs={"project_id": self.pk})


class ProjectImport(models.Model):
    """One run of ``project_import``: which archive made ``project``, and who ran it.

    Rows that record what people did (audit entries, verdicts, comments) keep their original
    authors and times from the archive, and point here (audit entries name it in their detail),
    so no page shows them as done live, on this installation, by the local user of that name.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="imports")
    archive_name = models.CharField(max_length=255)
    archive_sha256 = models.CharField(max_length=64)
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    imported_by_name = models.CharField(max_length=150)
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-imported_at", "-id"]

    def __str__(self) -> str:
        return f"{self.archive_name}, imported by {self.imported_by_name} on {self.imported_at:%Y-%m-%d %H:%M}"
