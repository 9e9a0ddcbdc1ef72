"""What each finished job used: one ``UsageRecord`` per job, written by the lifecycle's ``job_finished``."""
from __future__ import annotations

from django.conf import settings
from django.db import models


class Interface(models.TextChoices):
    WEB = "web", "Web"
    API = "api", "API"


class UsageRecord(models.Model):
    """One finished job (done, stopped or failed) and what it used, of any kind.

    Written once, inside the transaction that ends the job. The key is a plain
    id with its name copied, since keys live in ``api``, above this app. Compute
    seconds are the job's time on a worker, a batched text step shared among its
    rows; queue seconds from creation to the claim (or to the end, if never
    claimed); bytes stored are the files the job left (images, an export's zip).
    """

    # No foreign-key constraints in the database (Django still cascades and sets null on delete): the
    # checks ran at the commit of every job's end and locked the team's, project's and member's rows
    # (FOR KEY SHARE) for each. The team and project indexes are the leading columns of those below.
    team = models.ForeignKey("workspaces.Team", on_delete=models.CASCADE, related_name="+", db_constraint=False,
                             db_index=False)
    project = models.ForeignKey("workspaces.Project", on_delete=models.SET_NULL, null=True, related_name="+",
                                db_constraint=False, db_index=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+",
                             db_constraint=False)
    key_id = models.PositiveBigIntegerField(null=True, blank=True)
    key_name = models.CharField(max_length=100, blank=True)
    interface = models.CharField(max_length=3, choices=Interface.choices, default=Interface.WEB)
    kind = models.CharField(max_length=50)
    job_id = models.PositiveBigIntegerField()
    model_name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    images = models.PositiveIntegerField(default=0)
    steps = models.PositiveIntegerField(default=0)
    pixels = models.PositiveBigIntegerField(default=0)
    compute_seconds = models.FloatField(default=0.0)
    queue_seconds = models.FloatField(default=0.0)
    bytes_stored = models.PositiveBigIntegerField(default=0)
    job_created_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "job_id"], name="usage_one_record_per_job")]
        indexes = [
            models.Index(fields=["team", "finished_at"], name="usage_team_time"),
            models.Index(fields=["project", "finished_at"], name="usage_project_time"),
            models.Index(fields=["team", "user", "finished_at"], name="usage_member_time"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.job_id}: {self.status}"

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class TeamUsageSettings(models.Model):
    """A team's usage settings: the time zone its budget months begin in (midnight on the 1st)."""

    team = models.OneToOneField("workspaces.Team", on_delete=models.CASCADE, related_name="usage_settings")
    time_zone = models.CharField(max_length=64, default="UTC")

    def __str__(self) -> str:
        return f"{self.team_id}: {self.time_zone}"


class Metric(models.TextChoices):
    TOKENS = "tokens", "tokens"
    IMAGES = "images", "images"
    COMPUTE = "compute_seconds", "compute seconds"


class Budget(models.Model):
    """A monthly limit on a team's use: the whole team (no project, no user), one project, or one member.

    For each metric: empty (None) is no limit, 0 blocks every new job that
    counts it, N allows new jobs while the month's use is below N. Lowering it
    below the current use blocks new jobs only: nothing running is cut.
    """

    team = models.ForeignKey("workspaces.Team", on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey("workspaces.Project", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True,
                             related_name="+")
    tokens = models.PositiveBigIntegerField(null=True, blank=True)
    images = models.PositiveBigIntegerField(null=True, blank=True)
    compute_seconds = models.PositiveBigIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~models.Q(project__isnull=False, user__isnull=False),
                                   name="usage_budget_one_scope"),
            models.UniqueConstraint(fields=["team"], condition=models.Q(project__isnull=True, user__isnull=True),
                                    name="usage_budget_team_once"),
            models.UniqueConstraint(fields=["project"], condition=models.Q(project__isnull=False),
                                    name="usage_budget_project_once"),
            models.UniqueConstraint(fields=["team", "user"], condition=models.Q(user__isnull=False),
                                    name="usage_budget_member_once"),
        ]

    def __str__(self) -> str:
        return f"budget of team {self.team_id} ({self.scope})"

    @property
    def scope(self) -> str:
        return "project" if self.project_id else "member" if self.user_id else "team"

    @property
    def scope_key(self) -> str:
        """The ``UsageMonth.scope`` that counts against this budget."""
        return f"project:{self.project_id}" if self.project_id else f"member:{self.user_id}" if self.user_id else "team"

    def limit(self, metric: str) -> int | None:
        value: int | None = getattr(self, metric)
        return value


class BudgetNotice(models.Model):
    """A budget reached 80% (or 100%) of one metric in one month: the banner and the admins' inbox show it.
    At most one per budget, metric, month and level."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="notices")
    metric = models.CharField(max_length=20, choices=Metric.choices)
    month = models.DateField()
    level = models.PositiveSmallIntegerField(default=80)
    used = models.PositiveBigIntegerField()
    limit = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["budget", "metric", "month", "level"],
                                               name="usage_notice_once")]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.metric} at {self.level}% of budget {self.budget_id}"


class UsageDay(models.Model):
    """The day's sums of a team's records with the same project, member, model, key and interface: what the
    Usage page reads (a few rows a day instead of every job). ``day`` is the date in the team's time zone
    when the jobs ended; 0 in a ``*_ref`` means none. Kept by ``usage_record_create``."""

    # As on UsageRecord: no constraint in the database; the unique index below leads with the team.
    team = models.ForeignKey("workspaces.Team", on_delete=models.CASCADE, related_name="+", db_constraint=False,
                             db_index=False)
    day = models.DateField()
    project_ref = models.PositiveBigIntegerField(default=0)
    user_ref = models.PositiveBigIntegerField(default=0)
    key_ref = models.PositiveBigIntegerField(default=0)
    key_name = models.CharField(max_length=100, blank=True)
    model_name = models.CharField(max_length=200, blank=True)
    interface = models.CharField(max_length=3, choices=Interface.choices, default=Interface.WEB)
    jobs = models.PositiveBigIntegerField(default=0)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    images = models.PositiveBigIntegerField(default=0)
    pixels = models.PositiveBigIntegerField(default=0)
    bytes_stored = models.PositiveBigIntegerField(default=0)
    compute_seconds = models.FloatField(default=0.0)

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["team", "day", "project_ref", "user_ref", "key_ref", "model_name", "interface"],
            name="usage_day_once")]

    def __str__(self) -> str:
        return f"team {self.team_id} on {self.day}"


class UsageMonth(models.Model):
    """A month's running totals of one budget's scope (``team``, ``project:<id>``, ``member:<user id>``): the
    budget check reads at most three of these rows. ``month`` is the 1st, in the team's time zone."""

    team = models.ForeignKey("workspaces.Team", on_delete=models.CASCADE, related_name="+", db_constraint=False,
                             db_index=False)
    month = models.DateField()
    scope = models.CharField(max_length=40)
    tokens = models.PositiveBigIntegerField(default=0)
    images = models.PositiveBigIntegerField(default=0)
    compute_seconds = models.FloatField(default=0.0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "month", "scope"], name="usage_month_once")]

    def __str__(self) -> str:
        return f"team {self.team_id} {self.scope} in {self.month:%Y-%m}"
