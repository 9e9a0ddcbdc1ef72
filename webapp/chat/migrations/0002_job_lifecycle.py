"""One job lifecycle (issue #9): "streaming" becomes "running", ``error`` becomes ``reason``."""
from django.db import migrations, models


def forwards(apps, schema_editor):
    Message = apps.get_model("chat", "Message")
    Message.objects.filter(status="streaming").update(status="running")


def backwards(apps, schema_editor):
    Message = apps.get_model("chat", "Message")
    Message.objects.filter(status="running").update(status="streaming")


class Migration(migrations.Migration):
    dependencies = [("chat", "0001_initial")]

    operations = [
        migrations.RenameField(model_name="message", old_name="error", new_name="reason"),
        migrations.AlterField(
            model_name="message",
            name="reason",
            field=models.TextField(blank=True, help_text="Why the reply failed or was stopped."),
        ),
        migrations.AlterField(
            model_name="message",
            name="status",
            field=models.CharField(
                choices=[("queued", "Queued"), ("running", "Running"), ("done", "Done"), ("stopped", "Stopped"),
                         ("failed", "Failed")],
                db_index=True, default="done", max_length=10,
            ),
        ),
        migrations.RunPython(forwards, backwards),
    ]
