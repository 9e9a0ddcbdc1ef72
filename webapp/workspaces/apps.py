from __future__ import annotations

from django.apps import AppConfig


class WorkspacesConfig(AppConfig):
    name = "webapp.workspaces"
    label = "workspaces"

    def ready(self) -> None:
        from webapp.accounts.services import signup_invites_register
        from webapp.workspaces.services import SignupInvites

        signup_invites_register(SignupInvites())
        from webapp.core.access import live_access_gate_register
        from webapp.workspaces.selectors import live_two_factor_gate

        live_access_gate_register(live_two_factor_gate)
        from webapp.workspaces import signals  # noqa: F401 - connects the receivers
