"""One job lifecycle (issue #9): "succeeded" becomes "done", "cancelled" becomes "stopped",
``worker_name`` becomes ``worker`` (the same lifecycle columns as every job kind)."""
from django.db import migrations, models

RENAMES = {"succeeded": "done", "cancelled": "stopped"}


def forwards(apps, schema_editor):
    Job = apps.get_model("studio", "Job")
    for old, new in RENAMES.items():
        Job.objects.filter(status=old).update(status=new)


def backwards(apps, schema_editor):
    Job = apps.get_model("studio", "Job")
    for old, new in RENAMES.items():
        Job.objects.filter(status=new).update(status=old)


class Migration(migrations.Migration):
    dependencies = [("studio", "0001_initial")]

    operations = [
        migrations.RenameField(model_name="job", old_name="worker_name", new_name="worker"),
        migrations.AlterField(
            model_name="job",
            name="reason",
            field=models.TextField(blank=True, help_text="Why the job failed or was stopped."),
        ),
        migrations.AlterField(
            model_name="job",
            name="status",
            field=models.CharField(
                choices=[("queued", "Queued"), ("running", "Running"), ("done", "Done"), ("stopped", "Stopped"),
                         ("failed", "Failed")],
                db_index=True, default="queued", max_length=10,
            ),
        ),
        migrations.RunPython(forwards, backwards),
    ]
