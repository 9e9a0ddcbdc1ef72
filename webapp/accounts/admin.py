"""The site admin's list of accounts (Django admin): last login, teams, two-factor, live API keys,
and offboarding. Teams and keys are read through their relations' names (``memberships``,
``api_keys``): accounts sits below the apps that define them and imports neither."""
from __future__ import annotations

from typing import Any

from allauth.mfa.models import Authenticator
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest

from webapp.accounts.models import User
from webapp.accounts.services import user_deactivate, user_reactivate


@admin.register(User)
class AtelierUserAdmin(UserAdmin):
    list_display = ("username", "email", "is_active", "last_login", "teams", "two_factor", "live_keys", "is_staff")
    list_filter = ("is_active", "is_staff", "is_superuser")
    actions = ("deactivate", "reactivate")

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        second_factor = Authenticator.objects.filter(
            user=OuterRef("pk"), type__in=[Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN])
        return (super().get_queryset(request)
                .annotate(has_two_factor=Exists(second_factor),
                          live_key_count=Count("api_keys", filter=Q(api_keys__revoked_at__isnull=True), distinct=True))
                .prefetch_related("memberships__team"))

    @admin.display(description="teams")
    def teams(self, user: Any) -> str:
        return ", ".join(f"{m.team.name} ({m.role})" for m in user.memberships.all()) or "-"

    @admin.display(description="two-factor", boolean=True, ordering="has_two_factor")
    def two_factor(self, user: Any) -> bool:
        return bool(user.has_two_factor)

    @admin.display(description="live API keys", ordering="live_key_count")
    def live_keys(self, user: Any) -> int:
        return int(user.live_key_count)

    def _each(self, request: HttpRequest, queryset: QuerySet[User], service: Any, done: str) -> None:
        count = 0
        for user in queryset:
            try:
                service(actor=request.user, user=user)
            except (PermissionDenied, ValidationError) as error:
                messages.error(request, f"{user.username}: {' '.join(getattr(error, 'messages', [str(error)]))}")
            else:
                count += 1
        if count:
            messages.success(request, f"{done} {count} account{'s' if count != 1 else ''}.")

    @admin.action(description="Deactivate: end sessions and sockets, revoke API keys, stop queued jobs")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._each(request, queryset, user_deactivate, "Deactivated")

    @admin.action(description="Reactivate (revoked keys stay revoked)")
    def reactivate(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._each(request, queryset, user_reactivate, "Reactivated")

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Unticking "active" on the change form deactivates through the service, like the action."""
        was_active = change and User.objects.filter(pk=obj.pk, is_active=True).exists()
        if was_active and not obj.is_active:
            obj.is_active = True
            super().save_model(request, obj, form, change)
            try:
                user_deactivate(actor=request.user, user=obj)
            except (PermissionDenied, ValidationError) as error:
                messages.error(request, " ".join(getattr(error, "messages", [str(error)])))
            return
        super().save_model(request, obj, form, change)
