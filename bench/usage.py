"""Usage at scale: 100k finished jobs' records; the Usage page (90 days), the budget check at accept time,
and the lifecycle's write at a job's end. SQLite in a temporary folder by default; ``--database-url
postgresql://localhost/test`` for PostgreSQL. The project activity page reads one project (a tenth of the jobs) with
``--audit`` audit entries (100k). Prints medians (ms) and the issue's limits.

    .venv/bin/python bench/usage.py [--jobs 100000] [--database-url URL]
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _slowest_queries(label: str, fn, shown: int = 6) -> None:
    """One more request with its SQL captured: the query count, their total time and the slowest few."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        start = time.perf_counter()
        fn()
        total = (time.perf_counter() - start) * 1000
    queries = sorted(captured.captured_queries, key=lambda q: -float(q["time"]))
    in_sql = sum(float(q["time"]) for q in queries) * 1000
    print(f"{label}: {total:.1f} ms, {len(queries)} queries, {in_sql:.1f} ms in SQL", file=sys.stderr)
    for query in queries[:shown]:
        print(f"  {float(query['time']) * 1000:6.1f} ms  {query['sql'][:160]}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--audit", type=int, default=100_000, help="audit entries in the activity's project")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--queries", action="store_true", help="print the pages' query counts and slowest queries")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="atelier-bench-usage-"))
    os.environ.update(ATELIER_VAR_DIR=str(folder / "var"), ATELIER_SQLITE_PATH=str(folder / "bench.sqlite3"),
                      DJANGO_SETTINGS_MODULE="webapp.settings", HF_HUB_OFFLINE="1", ALLOWED_HOSTS="testserver")
    if args.database_url:
        os.environ["DATABASE_URL"] = args.database_url
    else:
        os.environ.pop("DATABASE_URL", None)
    from webapp.core import embedded_redis

    if not os.environ.get("REDIS_URL"):  # a job's end publishes: without a server the publisher retries all along
        os.environ["ATELIER_REDIS_PORT"] = str(embedded_redis.free_port())
    import django

    django.setup()
    from django.conf import settings

    redis = None
    if settings.EMBEDDED_REDIS:
        redis = embedded_redis.start(port=settings.EMBEDDED_REDIS_PORT, data_dir=folder / "redis", persist=False,
                                     password=settings.EMBEDDED_REDIS_PASSWORD)
    try:
        _run(args)
    finally:
        if redis is not None:
            redis.terminate()
            redis.wait(timeout=10)


def _run(args: argparse.Namespace) -> None:
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone

    from tests.factories import MembershipFactory, ProjectFactory, TeamFactory, UserFactory
    from webapp.core import jobs
    from webapp.reviews.models import ApprovedExport
    from webapp.reviews.services.exports import EXPORT_JOB
    from webapp.usage import selectors, services
    from webapp.usage.models import UsageRecord
    from webapp.workspaces.models import Membership, Role

    call_command("migrate", verbosity=0, interactive=False)
    if UsageRecord.objects.exists():
        sys.exit("the database is not empty: use a fresh one")
    print(f"database: {connection.vendor}; seeding {args.jobs:,} usage records over 90 days", file=sys.stderr)
    team = TeamFactory(name="Bench")
    users = [UserFactory(username=f"user{i}") for i in range(20)]
    for i, user in enumerate(users):
        MembershipFactory(team=team, user=user, role=Role.OWNER if i == 0 else Role.MEMBER)
    projects = [ProjectFactory(team=team, created_by=users[0]) for _ in range(10)]
    rng = random.Random(7)
    now = timezone.now()
    kinds = [("chat.reply", "smollm2-135m-instruct"), ("api.text", "smollm2-135m-instruct"), ("studio.image", "sd-tiny")]
    # Each member works in two projects and calls the API with a key of their own.
    homes = {user.pk: rng.sample(projects, 2) for user in users}
    batch = []
    for job_id in range(1, args.jobs + 1):
        kind, model = rng.choice(kinds)
        text = kind != "studio.image"
        user = rng.choice(users)
        batch.append(UsageRecord(
            team=team, project=rng.choice(homes[user.pk]), user=user, kind=kind, job_id=job_id,
            model_name=model, status="done", interface="api" if kind == "api.text" else "web",
            key_id=user.pk if kind == "api.text" else None, key_name=f"key of {user.username}",
            prompt_tokens=rng.randint(10, 500) if text else 0, completion_tokens=rng.randint(10, 500) if text else 0,
            images=0 if text else rng.randint(1, 4), steps=0 if text else 20, pixels=0 if text else 512 * 512,
            compute_seconds=rng.uniform(0.5, 20), queue_seconds=rng.uniform(0, 5),
            finished_at=now - timedelta(seconds=rng.uniform(0, 90 * 86400))))
        if len(batch) == 5000:
            UsageRecord.objects.bulk_create(batch)
            batch = []
    UsageRecord.objects.bulk_create(batch)
    start = time.perf_counter()
    services.usage_rollups_rebuild(team_id=team.pk)  # the finish writes keep these; a bulk load rebuilds them
    print(f"rollups rebuilt from {args.jobs:,} records in {time.perf_counter() - start:.1f} s", file=sys.stderr)

    owner = Membership.objects.get(team=team, user=users[0])
    figures: dict[str, float] = {}
    figures["usage_report_90d"] = _median_ms(lambda: selectors.usage_report(membership=owner, days=90), 7)
    client = Client()
    client.force_login(users[0])
    url = reverse("usage:team_usage", args=[team.pk])
    figures["usage_page_90d"] = _median_ms(lambda: client.get(url, {"days": 90}), 7)
    from webapp.audit.models import AuditAction, AuditEntry

    actions = [AuditAction.REVIEW_REQUESTED, AuditAction.VERDICT, AuditAction.EXPORTED, AuditAction.DOWNLOADED,
               AuditAction.GENERATED, AuditAction.COMMENTED]
    entries = [AuditEntry(actor_id=rng.choice(users).pk, actor_name="bench", team_id=team.pk, project_id=projects[0].pk,
                          action=rng.choice(actions), object_kind="review", object_id=i) for i in range(args.audit)]
    AuditEntry.objects.bulk_create(entries, batch_size=5000)
    with connection.cursor() as cursor:  # the trail refuses updates through the ORM; the bench spreads its times
        table = connection.ops.quote_name(AuditEntry._meta.db_table)
        for start in range(0, len(entries), 5000):
            cursor.executemany(f"UPDATE {table} SET at = %s WHERE id = %s",  # noqa: S608
                               [(connection.ops.adapt_datetimefield_value(now - timedelta(seconds=rng.uniform(0, 90 * 86400))), e.pk)
                                for e in entries[start:start + 5000]])
    if connection.vendor == "postgresql":  # as autovacuum would after such a load: plans follow the real sizes
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    activity = reverse("activity:project", args=[projects[0].pk])
    figures["project_activity_page"] = _median_ms(lambda: client.get(activity), 15)
    if args.queries:
        _slowest_queries("Usage page", lambda: client.get(url, {"days": 90}))
        _slowest_queries("activity page", lambda: client.get(activity))

    admit = jobs.Admission(project=projects[0], user_id=users[3].pk, queue="text")
    figures["budget_check_no_budget"] = _median_ms(lambda: services.budget_admit(admit), 200)
    services.budget_set(actor=owner, tokens=10**12, compute_seconds=10**12)
    services.budget_set(actor=owner, project=projects[0], tokens=10**12)
    services.budget_set(actor=owner, user_id=users[3].pk, tokens=10**12, images=10**9)
    figures["budget_check_three_budgets"] = _median_ms(lambda: services.budget_admit(admit), 200)

    exports = [ApprovedExport.objects.create(project=projects[0], requested_by=users[3], status="running",
                                             started_at=now, heartbeat_at=now) for _ in range(400)]
    ids = iter(e.pk for e in exports)
    extra = [ApprovedExport.objects.create(project=projects[0], requested_by=users[3], status="running",
                                           started_at=now, heartbeat_at=now)]
    from webapp.core.jobs import job_finished
    from webapp.usage.services import usage_record_on_finish

    # Ends with and without the usage write, taken in turns so that the shared machine's load falls on both.
    with_usage: list[float] = []
    without: list[float] = []
    for turn in range(400):
        if turn % 2:
            job_finished.disconnect(usage_record_on_finish, dispatch_uid="usage.record_on_finish")
        start = time.perf_counter()
        jobs.job_finish(kind=EXPORT_JOB, job_id=next(ids), status="done")
        (without if turn % 2 else with_usage).append((time.perf_counter() - start) * 1000)
        if turn % 2:
            job_finished.connect(usage_record_on_finish, dispatch_uid="usage.record_on_finish")
    if args.queries:
        _slowest_queries("a job's end with its usage write",
                         lambda: jobs.job_finish(kind=EXPORT_JOB, job_id=extra.pop().pk, status="done"), shown=12)
    figures["finish_with_record_and_budgets"] = statistics.median(with_usage)
    figures["finish_without_usage"] = statistics.median(without)
    figures["finish_write_added"] = figures["finish_with_record_and_budgets"] - figures["finish_without_usage"]

    limits = {"usage_page_90d": 200, "budget_check_three_budgets": 2, "finish_write_added": 2,
              "project_activity_page": 50}
    for name, value in figures.items():
        limit = f"  (limit {limits[name]} ms)" if name in limits else ""
        print(f"{connection.vendor:10} {name:32} {value:8.2f} ms{limit}")


if __name__ == "__main__":
    main()
