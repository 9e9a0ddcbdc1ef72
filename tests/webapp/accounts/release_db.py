"""Run as a script (``python -m tests.webapp.accounts.release_db STAGE``) against the SQLite file in
ATELIER_DATABASE_NAME: ``release`` builds the schema of the last release before allauth and saves an
account in it as that release did; ``upgrade`` runs today's migrations; ``login`` logs that account in
through today's login page, by username and by e-mail, and prints what happened as JSON."""
from __future__ import annotations

import json
import os
import sys

# Each of Atelier's apps at the last release before allauth (main at ecfcdba). An app of ours that is
# not listed did not exist then; allauth's apps did not either.
RELEASE = {
    "accounts": "0001_initial", "api": "0001_initial", "audit": "0001_initial",
    "chat": "0005_job_model_reason_help", "prompt_templates": "0001_initial",
    "prompts": "0002_promptrecord_source_promptrecord_source_label", "reviews": "0004_approvedexport_expired_at",
    "studio": "0004_job_model_reason_help", "workspaces": "0002_project_import",
}
USERNAME, EMAIL, PASSWORD = "olivia", "olivia@example.com", "an old but good password 7"


def release() -> None:
    from django.apps import apps
    from django.contrib.auth.hashers import make_password
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    targets = []
    for label, name in sorted(executor.loader.graph.leaf_nodes()):
        module = apps.get_app_config(label).name
        if label in RELEASE:
            targets.append((label, RELEASE[label]))
        elif not module.startswith(("webapp.", "allauth")):
            targets.append((label, name))
    executor.migrate(targets)
    state = MigrationExecutor(connection).loader.project_state(targets)
    user_model = state.apps.get_model("accounts", "User")
    team_model = state.apps.get_model("workspaces", "Team")
    membership_model = state.apps.get_model("workspaces", "Membership")
    user = user_model.objects.create(username=USERNAME, email=EMAIL, password=make_password(PASSWORD))
    team = team_model.objects.create(name="Acme")
    membership_model.objects.create(team=team, user=user, role="owner")
    tables = connection.introspection.table_names()
    print(json.dumps({"allauth_tables": [t for t in tables if t.startswith("account_")]}))


def upgrade() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def login() -> None:
    from allauth.account.models import EmailAddress
    from django.test import Client

    results = {"addresses": list(EmailAddress.objects.values_list("email", "primary", "verified"))}
    for field, value in (("login", USERNAME), ("login", EMAIL), ("username", USERNAME)):
        client = Client()
        response = client.post("/accounts/login/", {field: value, "password": PASSWORD})
        dashboard = client.get("/")
        results[f"{field}={value}"] = {"status": response.status_code, "location": response.get("Location", ""),
                                       "dashboard": dashboard.status_code,
                                       "team_shown": b"Acme" in dashboard.content}
    print(json.dumps(results))


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django

    django.setup()
    {"release": release, "upgrade": upgrade, "login": login}[sys.argv[1]]()
