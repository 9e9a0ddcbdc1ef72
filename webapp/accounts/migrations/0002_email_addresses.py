"""Accounts made before allauth kept their address on the user row only: give each one allauth's
EmailAddress (primary, unverified), so a reset reaches it and an address change replaces it."""

from django.db import migrations


def forwards(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    EmailAddress = apps.get_model("account", "EmailAddress")
    have = set(EmailAddress.objects.values_list("user_id", flat=True))
    EmailAddress.objects.bulk_create(
        EmailAddress(user_id=pk, email=address.lower(), primary=True, verified=False)
        for pk, address in User.objects.exclude(email="").values_list("pk", "email")
        if pk not in have
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("account", "0009_emailaddress_unique_primary_email"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
