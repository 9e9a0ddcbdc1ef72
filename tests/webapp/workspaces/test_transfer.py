"""Moving a project: ``project_export`` writes rows and media to one archive, ``project_import``
recreates them with new ids in another team or installation, and the result compares equal."""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command

from tests.factories import membership_of
from tests.helpers import ROOT, fake_result, tiny_request
from webapp.api.models import ApiKey
from webapp.audit.models import AuditEntry
from webapp.chat.models import Conversation, Message
from webapp.prompt_templates.models import PromptTemplate, TemplateUse, TemplateVersion
from webapp.prompt_templates.services import template_create, template_publish, template_save
from webapp.prompts.models import PromptRecord
from webapp.prompts.services import prompt_record_create
from webapp.reviews.models import ApprovedExport, Comment, ReviewRequest, ReviewState, Verdict
from webapp.reviews.services import (
    comment_add,
    export_build,
    export_create,
    review_request_create,
    verdict_give,
)
from webapp.reviews.services.reviews import Region
from webapp.studio.models import Asset, Job
from webapp.studio.services import runner
from webapp.workspaces.models import Project
from webapp.workspaces.transfer import export_models, project_export, project_import

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def full_project(project, alice, bob, redis_server, no_enqueue):  # the job is run in-process below
    """Launch: a branched conversation, the prompt history, an image job with an asset, and a re-run of it."""
    conversation = Conversation.objects.create(project=project, created_by=alice, title="Plans",
                                               system_prompt="Be brief.", params={"temperature": 0.2})
    question = Message.objects.create(conversation=conversation, role="user", author=bob, text="Name a fruit")
    reply = Message.objects.create(conversation=conversation, parent=question, role="assistant", text="Apple.",
                                   status="done", completion_tokens=2, time_to_first_token=0.4, model_name="smollm2",
                                   params={"seed": 1})
    Message.objects.create(conversation=conversation, parent=question, role="assistant", text="", status="failed")
    prompt_record_create(project=project, author=bob, kind="chat", text="Name a fruit", params={})
    job = runner.job_start(job_id=_job(project, bob).pk, worker="w1")
    runner.job_complete(job=job, result=fake_result(job, colours=("red", "blue")))
    asset = Asset.objects.filter(job=job).order_by("batch_index").first()
    Job.objects.create(project=project, author=alice, source_asset=asset, origin="rerun", model_name=job.model_name,
                       params=job.params, status="failed", reason="no worker")
    _templates(project, alice, reply=reply, job=job)
    _reviews(project, alice, bob, job=job)
    ApiKey.objects.create(project=project, user=bob, name="ci", prefix="abcd1234", secret_hash="0" * 64)
    return project


def _templates(project, alice, *, reply, job) -> None:
    """A chat template with three versions (v2 published) and an image one; uses of a reply and a job."""
    owner = membership_of(alice)
    fruit = template_create(actor=owner, project=project, name="Fruit", command="fruit", kind="chat",
                            body="Name a {{kind}}", settings={"temperature": 0.3}, note="first")
    template_save(actor=owner, template=fruit, body="Name one {{kind}}", note="second")
    template_save(actor=owner, template=fruit, body="Name a {{kind}}, briefly", note="third")
    template_publish(actor=owner, version=fruit.versions.get(number=2))
    poster = template_create(actor=owner, project=project, name="Poster", command="poster", kind="image", body="A {{x}}")
    TemplateUse.objects.create(version=fruit.versions.get(number=2), project=project, user=alice, command="fruit",
                               version_number=2, values={"kind": "fruit"}, output_kind="reply", output_id=reply.pk)
    TemplateUse.objects.create(version=poster.published_version, project=project, user=alice, command="poster",
                               version_number=1, values={"x": "cat"}, output_kind="job", output_id=job.pk)


def _reviews(project, alice, bob, *, job) -> None:
    """Bob asks alice about his red image; she asks for changes on a region; v2 (the blue one) is approved
    and exported."""
    red, blue = Asset.objects.filter(job=job).order_by("batch_index")[:2]
    (first,) = review_request_create(actor=membership_of(bob), project=project, kind="image", asset_ids=[red.pk],
                                     reviewer_ids=[alice.pk], note="Colour ok?")
    verdict_give(actor=membership_of(alice), review=first, decision="request_changes", comment="Too red")
    question = comment_add(actor=membership_of(alice), review=first, text="This corner", region=Region(x=1, y=2, w=3, h=4))
    comment_add(actor=membership_of(bob), review=first, text="Fixed in v2", parent=question)
    second = ReviewRequest.objects.create(project=project, round=first.round, asset_kind="image", asset_id=blue.pk,
                                          asset_author=bob, requested_by=bob, version=2, previous=first)
    second.reviewers.set([alice])
    ReviewRequest.objects.filter(pk=first.pk).update(state=ReviewState.SUPERSEDED)
    verdict_give(actor=membership_of(alice), review=second, decision="approve")
    export = export_create(actor=membership_of(alice), project=project)
    export_build(export_id=export.pk)


def _job(project, author) -> Job:
    from webapp.studio import services

    return services.job_create(project=project, actor=membership_of(author), request=tiny_request())


def _sha(name: str) -> str:
    with default_storage.open(name, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def fingerprint(project: Project) -> dict:
    """Everything a project holds, without ids: what must survive a move."""
    def who(user) -> str | None:
        return user.username if user else None

    messages = Message.objects.filter(conversation__project=project).select_related("parent", "author")
    messages_by_id = {m.pk: m for m in messages}
    jobs_by_id = {j.pk: j for j in Job.objects.filter(project=project)}
    assets_by_id = {a.pk: a for a in Asset.objects.filter(project=project)}
    exports_by_id = {e.pk: e for e in ApprovedExport.objects.filter(project=project)}
    targets = {"reply": lambda pk: messages_by_id[pk].text, "job": lambda pk: jobs_by_id[pk].created_at,
               "image": lambda pk: assets_by_id[pk].sha256, "export": lambda pk: exports_by_id[pk].created_at}
    templates = PromptTemplate.objects.filter(project=project).select_related("published_version", "created_by")
    targets["template"] = {t.pk: t.command for t in templates}.__getitem__
    reviews = ReviewRequest.objects.filter(project=project).select_related("previous", "round")
    return {
        "project": (project.name, project.description, who(project.created_by), project.created_at),
        "conversations": sorted(
            (c.title, c.system_prompt, c.params, who(c.created_by), c.created_at)
            for c in Conversation.objects.filter(project=project)
        ),
        "messages": sorted(
            (m.role, m.text, m.status, m.parent.text if m.parent else None, who(m.author), m.params,
             m.completion_tokens, m.time_to_first_token, m.created_at)
            for m in messages
        ),
        "prompts": sorted((p.kind, p.text, who(p.author), p.created_at) for p in PromptRecord.objects.filter(project=project)),
        "jobs": sorted(
            (j.status, j.origin, j.reason, str(j.params), who(j.author), j.prompt_record.text if j.prompt_record else None,
             j.source_asset.sha256 if j.source_asset else None, j.created_at)
            for j in Job.objects.filter(project=project).select_related("source_asset", "prompt_record", "author")
        ),
        "assets": sorted(
            (a.sha256, _sha(a.file.name), _sha(a.thumbnail.name), a.batch_index, a.seed, a.width, str(a.params),
             a.job.created_at)
            for a in Asset.objects.filter(project=project).select_related("job")
        ),
        "templates": sorted(
            (t.name, t.command, t.kind, t.published_version.number, t.published_version.body, who(t.created_by),
             t.created_at)
            for t in templates
        ),
        "versions": sorted(
            (v.template.command, v.number, v.body, v.settings, v.note, who(v.saved_by), v.saved_at)
            for v in TemplateVersion.objects.filter(template__project=project).select_related("template", "saved_by")
        ),
        # A use points at the very reply or job it made (by the output's content, not its id).
        "uses": sorted(
            (u.command, u.version_number, u.version.body, u.values, u.output_kind, str(targets[u.output_kind](u.output_id)),
             who(u.user), u.created_at)
            for u in TemplateUse.objects.filter(project=project).select_related("version", "user")
        ),
        "reviews": sorted(
            (r.asset_kind, targets[r.asset_kind](r.asset_id), r.state, r.version, r.note, who(r.requested_by),
             who(r.asset_author), sorted(who(u) for u in r.reviewers.all()),
             r.previous.asset_id and targets[r.asset_kind](r.previous.asset_id) if r.previous else None,
             r.round.created_at, r.created_at, r.state_changed_at)
            for r in reviews
        ),
        "verdicts": sorted(
            (targets["image"](v.review.asset_id), v.decision, v.comment, v.is_current, who(v.reviewer), v.created_at)
            for v in Verdict.objects.filter(review__project=project).select_related("review", "reviewer")
        ),
        "comments": sorted(
            (targets["image"](c.review.asset_id), c.text, c.parent.text if c.parent else None,
             (c.region_x, c.region_y, c.region_w, c.region_h), who(c.author), c.created_at)
            for c in Comment.objects.filter(review__project=project).select_related("review", "parent", "author")
        ),
        "exports": sorted(
            (e.status, e.files_done, e.files_total, e.byte_size, _sha(e.file), who(e.requested_by), e.created_at)
            for e in exports_by_id.values()
        ),
        # Audit entries are new rows in the new place, pointing at the moved objects.
        "audit": sorted(
            (e.actor_name, e.action, e.object_kind,
             str(targets[e.object_kind](e.object_id)) if e.object_id is not None else None, e.at)
            for e in AuditEntry.objects.filter(project_id=project.pk)
        ),
    }


def test_export_models_list_every_app_that_holds_project_rows():
    labels = [model._meta.label for model, _ in export_models()]
    assert labels == ["audit.AuditEntry", "prompts.PromptRecord", "prompt_templates.PromptTemplate",
                      "prompt_templates.TemplateVersion", "prompt_templates.TemplateUse", "chat.Conversation",
                      "chat.Message", "studio.Job", "studio.Asset", "reviews.ReviewRound", "reviews.ReviewRequest",
                      "reviews.Verdict", "reviews.Comment", "reviews.ApprovedExport",
                      "usage.UsageRecord", "knowledge.Document", "knowledge.Passage"]
    assert "api.ApiKey" not in labels  # secrets (their hashes) stay in the installation that issued them


def test_a_moved_project_compares_equal_with_new_ids(full_project, other_team, tmp_path):
    archive = tmp_path / "launch.tar.gz"
    summary = project_export(project=full_project, path=archive)
    assert summary.files == 5  # two images, two thumbnails, the approved set's zip
    assert summary.rows["audit.AuditEntry"] >= 5 and summary.rows["reviews.Verdict"] == 2

    copy = project_import(path=archive, team=other_team)

    assert copy.pk != full_project.pk
    assert copy.team == other_team
    original = fingerprint(full_project)
    assert original["assets"] and original["messages"] and original["jobs"]
    assert len(original["versions"]) == 4 and len(original["uses"]) == 2 and len(original["reviews"]) == 2
    assert len(original["verdicts"]) == 2 and len(original["comments"]) == 2 and len(original["exports"]) == 1
    assert {"generated", "review_requested", "verdict", "commented"} <= {entry[1] for entry in original["audit"]}
    assert fingerprint(copy) == original
    new_ids = set(Asset.objects.filter(project=copy).values_list("pk", flat=True))
    assert not new_ids & set(Asset.objects.filter(project=full_project).values_list("pk", flat=True))
    rerun = Job.objects.get(project=copy, origin="rerun")
    assert rerun.source_asset.project == copy  # the Job <-> Asset cycle points inside the copy
    # (kind, id) references point at the copy's rows, not at the source's ids.
    reply_use = TemplateUse.objects.get(project=copy, output_kind="reply")
    assert Message.objects.get(pk=reply_use.output_id).conversation.project == copy
    assert reply_use.version.template.project == copy
    job_use = TemplateUse.objects.get(project=copy, output_kind="job")
    assert Job.objects.get(pk=job_use.output_id).project == copy
    assert PromptTemplate.objects.get(project=copy, command="fruit").published_version.number == 2
    for review in ReviewRequest.objects.filter(project=copy):
        assert Asset.objects.get(pk=review.asset_id).project == copy
    entries = AuditEntry.objects.filter(project_id=copy.pk)
    assert entries.count() == AuditEntry.objects.filter(project_id=full_project.pk).count()
    assert set(entries.values_list("team_id", flat=True)) == {other_team.pk}
    for entry in entries.filter(object_kind="image"):
        assert Asset.objects.get(pk=entry.object_id).project == copy
    assert not ApiKey.objects.filter(project=copy).exists()


def test_import_without_a_team_recreates_the_team_and_its_members(full_project, tmp_path):
    archive = tmp_path / "launch.tar.gz"
    project_export(project=full_project, path=archive)
    copy = project_import(path=archive, name="Launch again")
    assert copy.team != full_project.team
    assert copy.team.name == "Acme"
    assert sorted(copy.team.memberships.values_list("user__username", "role")) == sorted(
        full_project.team.memberships.values_list("user__username", "role")
    )


def test_import_refuses_a_name_taken_in_the_team_and_writes_nothing(full_project, tmp_path):
    archive = tmp_path / "launch.tar.gz"
    project_export(project=full_project, path=archive)
    files_before = sorted(default_storage.listdir(f"studio/{full_project.pk}")[1])
    counts = (Project.objects.count(), Message.objects.count(), Asset.objects.count())
    with pytest.raises(ValidationError) as raised:
        project_import(path=archive, team=full_project.team)
    assert "name" in raised.value.message_dict
    assert (Project.objects.count(), Message.objects.count(), Asset.objects.count()) == counts
    assert sorted(default_storage.listdir(f"studio/{full_project.pk}")[1]) == files_before


def test_import_rejects_an_archive_that_is_no_export(tmp_path, team):
    import tarfile

    archive = tmp_path / "junk.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(__file__, arcname="something.py")
    with pytest.raises(CommandError, match=r"archive: .*no manifest"):
        call_command("project_import", str(archive), "--team-id", str(team.pk))


def test_commands_move_a_project(full_project, other_team, tmp_path):
    archive = tmp_path / "launch.tar.gz"
    out = StringIO()
    call_command("project_export", str(full_project.pk), str(archive), stdout=out)
    assert "5 files" in out.getvalue()
    call_command("project_import", str(archive), "--team-id", str(other_team.pk), stdout=out)
    copy = Project.objects.get(team=other_team, name=full_project.name)
    assert fingerprint(copy) == fingerprint(full_project)


def test_project_export_names_a_missing_project():
    with pytest.raises(CommandError, match="project_id"):
        call_command("project_export", "999999", "/tmp/never.tar.gz")


def _manage(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.skipif(not os.environ.get("ATELIER_TEST_SCALE"), reason="make test-scale: needs PostgreSQL as the source")
def test_a_project_moves_from_postgresql_to_sqlite_and_back(full_project, other_team, tmp_path, settings):
    """The scaled installation (PostgreSQL, S3) to an embedded one (SQLite, local disk) and back again."""
    assert settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    archive, back = tmp_path / "out.tar.gz", tmp_path / "back.tar.gz"
    project_export(project=full_project, path=archive)
    embedded = {k: v for k, v in os.environ.items()
                if not k.startswith(("DATABASE_URL", "ATELIER_DATABASE_NAME", "ATELIER_STORAGE", "AWS_"))}
    embedded.update(ATELIER_VAR_DIR=str(tmp_path / "embedded"), ATELIER_SQLITE_PATH=str(tmp_path / "embedded.sqlite3"))
    _manage("migrate", "--noinput", "-v", "0", env=embedded)
    imported = _manage("project_import", str(archive), env=embedded)
    project_id = re.search(r"Imported project (\d+)", imported).group(1)
    _manage("project_export", project_id, str(back), env=embedded)
    assert (tmp_path / "embedded" / "media" / "studio").is_dir()  # the media landed on the embedded disk

    copy = project_import(path=back, team=other_team)
    assert fingerprint(copy) == fingerprint(full_project)


def test_references_to_rows_that_did_not_travel(full_project, other_team, tmp_path):
    """A use whose reply is gone is left out (its id can't be empty); an audit entry keeps its row, with no id."""
    alice = full_project.created_by
    TemplateUse.objects.create(project=full_project, user=alice, command="gone", version_number=1,
                               output_kind="reply", output_id=999_999)
    AuditEntry.objects.create(actor_id=alice.pk, actor_name="alice", team_id=full_project.team_id,
                              project_id=full_project.pk, action="downloaded", object_kind="reply", object_id=999_999)
    archive = tmp_path / "launch.tar.gz"
    project_export(project=full_project, path=archive)

    copy = project_import(path=archive, team=other_team)

    assert not TemplateUse.objects.filter(project=copy, command="gone").exists()
    assert TemplateUse.objects.filter(project=copy).count() == 2
    entry = AuditEntry.objects.get(project_id=copy.pk, action="downloaded")
    assert (entry.object_kind, entry.object_id, entry.team_id) == ("reply", None, other_team.pk)
    assert entry.actor_id == alice.pk  # matched by username in the same installation
