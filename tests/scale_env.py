"""``make test-scale``: run pytest against the real services of a scaled deployment.

    python -m tests.scale_env [pytest arguments]

Checks that PostgreSQL and Redis answer, starts ``moto`` in server mode (a
real HTTP S3 endpoint) on a free port with a bucket, exports the settings
that switch Atelier to them, runs pytest, and stops moto again. It refuses
to run, naming the missing service, when one does not answer.

Every setting reaches pytest, and through it the worker and daphne
subprocesses that the fixtures start, as environment variables: the same
ones the README's "Scale it" recipe uses.

- ``ATELIER_SCALE_DATABASE_URL`` (default ``postgres://postgres@127.0.0.1:5432/test``):
  Django's test runner creates its own ``test_<name>`` database next to it.
- ``ATELIER_SCALE_REDIS_URL`` (default ``redis://127.0.0.1:6379/11``): a database
  number of the suite's own, emptied before the run; the multi-host test's
  hosts use the next number up (12), emptied when it starts.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/11"
BUCKET = "atelier-test"
# moto accepts any credentials; boto3 only needs some.
S3_KEY, S3_SECRET, S3_REGION = "testing", "testing", "us-east-1"


class ServiceMissing(RuntimeError):
    pass


def check_postgres(url: str) -> None:
    import dj_database_url
    import psycopg

    cfg = dj_database_url.parse(url)
    try:
        with psycopg.connect(
            host=cfg["HOST"] or "127.0.0.1", port=int(cfg["PORT"] or 5432), user=cfg["USER"] or "postgres",
            password=cfg["PASSWORD"] or None, dbname=cfg["NAME"], connect_timeout=3,
        ) as conn:
            conn.execute("SELECT 1")
            if not conn.execute("SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]:
                raise ServiceMissing(
                    f"PostgreSQL at {url}: user {cfg['USER']!r} may not create databases, and the test runner must."
                )
    except psycopg.Error as exc:
        raise ServiceMissing(
            f"PostgreSQL does not answer at {url}: {exc}".strip()
            + "\n  Start it (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start)"
            " or point ATELIER_SCALE_DATABASE_URL at one."
        ) from exc


def check_redis(url: str) -> None:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
        client.ping()
        client.flushdb()  # this database number is the suite's own
    except redis.RedisError as exc:
        raise ServiceMissing(
            f"Redis does not answer at {url}: {exc}\n  Start it (redis-server --daemonize yes --port 6379 ...)"
            " or point ATELIER_SCALE_REDIS_URL at one."
        ) from exc


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def start_moto(*, host: str, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """moto's S3 in server mode, answering on ``host:port`` before this returns."""
    try:
        import moto.server  # noqa: F401
    except ImportError as exc:
        raise ServiceMissing("moto is not installed: run 'make install-dev' (it pins moto[server]).") from exc
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "wb")  # noqa: SIM115 - the child keeps it
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise ServiceMissing(f"moto's S3 server exited at start; see {log_path}")
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/moto-api/", timeout=2):
                return process
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise ServiceMissing(f"moto's S3 server did not answer on {host}:{port}; see {log_path}") from None
            time.sleep(0.2)


def create_bucket(*, endpoint: str, bucket: str) -> None:
    import boto3

    s3 = boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id=S3_KEY, aws_secret_access_key=S3_SECRET, region_name=S3_REGION
    )
    s3.create_bucket(Bucket=bucket)


def s3_env(*, endpoint: str, bucket: str = BUCKET) -> dict[str, str]:
    return {
        "ATELIER_STORAGE": "s3",
        "AWS_S3_ENDPOINT_URL": endpoint,
        "AWS_STORAGE_BUCKET_NAME": bucket,
        "AWS_ACCESS_KEY_ID": S3_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET,
        "AWS_S3_REGION_NAME": S3_REGION,
    }


def main(argv: list[str]) -> int:
    database_url = os.environ.get("ATELIER_SCALE_DATABASE_URL", DEFAULT_DATABASE_URL)
    redis_url = os.environ.get("ATELIER_SCALE_REDIS_URL", DEFAULT_REDIS_URL)
    moto_process = None
    try:
        check_postgres(database_url)
        check_redis(redis_url)
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        moto_process = start_moto(host="127.0.0.1", port=port, log_path=ROOT / "var" / "test-scale" / "moto.log")
        create_bucket(endpoint=endpoint, bucket=BUCKET)
    except ServiceMissing as exc:
        if moto_process is not None:
            moto_process.kill()
        print(f"make test-scale refuses to run: {exc}", file=sys.stderr)
        return 2
    env = dict(os.environ)
    env.update(s3_env(endpoint=endpoint))
    env.update({
        "ATELIER_TEST_SCALE": "1",
        "DATABASE_URL": database_url,
        "ATELIER_TEST_REDIS_URL": redis_url,
    })
    print(f"test-scale: PostgreSQL {database_url}, Redis {redis_url}, S3 (moto) {endpoint}", flush=True)
    try:
        return subprocess.call([sys.executable, "-m", "pytest", *argv], cwd=ROOT, env=env)
    finally:
        moto_process.terminate()
        try:
            moto_process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            moto_process.kill()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
