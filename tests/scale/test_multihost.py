"""Workers on other hosts: daphne, a text worker and two image workers, each on a host of its own.

The hosts are network namespaces on a private /24 (tests/netlab.py); none
shares a disk with another, so images reach the gallery only through S3
(moto). PostgreSQL, Redis and S3 are this machine's, reached at the bridge
address. The test drives a chat reply and an image job through the web
host's forms, checks the gallery serves the image from S3, then cuts one
image host off mid-job: the job must end failed with a reason, and the
second image host must serve the next job. Nothing may assume localhost.
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
import urllib.parse
import urllib.request

import boto3
import pytest
import redis
from django.conf import settings
from django.test import Client

from tests.helpers import ROOT, wait_for, worker_command
from tests.netlab import Browser, Lab, missing_tools
from webapp.chat.models import Message
from webapp.studio.models import Asset, Job

pytestmark = [
    pytest.mark.stack,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.environ.get("ATELIER_TEST_SCALE"), reason="make test-scale: PostgreSQL, Redis and S3"),
]

SUBNET = "10.213.77"
TOKEN = "lab-metrics-token"
STALE_SECONDS = 4
MODEL_TIMEOUT = 600  # a host loads its model from scratch, on a shared 2-core machine


def _moved(url: str, host: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return parts._replace(netloc=f"{host}:{parts.port}").geturl()


def _lab_redis_url(lab: Lab) -> str:
    """The suite's Redis, one database number up: the lab's broker is its own, so the suite's
    shared worker (on every queue, on this machine's disk) can't take the lab's jobs."""
    parts = urllib.parse.urlsplit(settings.REDIS_URL)
    db = (int(parts.path.strip("/") or 0) + 1) % 16
    return parts._replace(netloc=f"{lab.gateway}:{parts.port or 6379}", path=f"/{db}").geturl()


def _host_env(lab: Lab, web_address: str) -> dict[str, str]:
    """The same variables the README's "Scale it" recipe sets on every host."""
    from django.db import connection

    db = settings.DATABASES["default"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATELIER_TEST", "PYTEST", "ATELIER_VAR_DIR"))}
    env.update({
        "DATABASE_URL": f"postgres://{db['USER']}@{lab.gateway}:{db['PORT'] or 5432}/{db['NAME']}",
        "ATELIER_DATABASE_NAME": str(connection.settings_dict["NAME"]),
        "REDIS_URL": _lab_redis_url(lab),
        "AWS_S3_ENDPOINT_URL": _moved(os.environ["AWS_S3_ENDPOINT_URL"], lab.gateway),
        "SECRET_KEY": settings.SECRET_KEY,
        "ALLOWED_HOSTS": web_address,
        "ATELIER_METRICS_TOKEN": TOKEN,
        "ATELIER_WORKER_HEARTBEAT_SECONDS": "1",
        "ATELIER_JOB_HEARTBEAT_SECONDS": "1",
        "ATELIER_JOB_STALE_SECONDS": str(STALE_SECONDS),
        "PYTHONUNBUFFERED": "1",
        "HF_HUB_OFFLINE": "1",
    })
    return env


def _health(browser: Browser) -> dict:
    request = urllib.request.Request(browser.base_url + "/healthz", headers={"Authorization": f"Bearer {TOKEN}"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read())


def _alive(browser: Browser, name: str) -> bool:
    try:
        health = _health(browser)
    except OSError:  # daphne is still starting
        return False
    workers = [w for q in health["workers"].values() for w in q.get("workers", [])]
    return any(w["name"] == name and w["alive"] for w in workers)


@pytest.fixture
def lab(tmp_path_factory, redis_server):
    why = missing_tools()
    if why:
        pytest.fail(f"the multi-host test can't build its network: {why}")
    tag = f"{os.getpid() % 1000:03d}"
    with Lab(tmp_path_factory.mktemp("hosts"), subnet=SUBNET, tag=tag) as lab:
        db = settings.DATABASES["default"]
        lab.forward(int(db["PORT"] or 5432))
        lab.forward(urllib.parse.urlsplit(settings.REDIS_URL).port or 6379)
        redis.Redis.from_url(_lab_redis_url(lab).replace(lab.gateway, "127.0.0.1")).flushdb()
        lab.forward(urllib.parse.urlsplit(os.environ["AWS_S3_ENDPOINT_URL"]).port or 80)
        yield lab


def test_web_and_workers_on_separate_hosts_share_only_the_services(lab, project, bob):
    web = lab.add_host("web", 10)
    text = lab.add_host("gpu-text", 20)
    image1 = lab.add_host("gpu-image1", 30)
    image2 = lab.add_host("gpu-image2", 31)
    env = _host_env(lab, web.address)
    web.start([sys.executable, "-m", "daphne", "-b", web.address, "-p", "8000", "webapp.asgi:application"],
              env=env, log_name="daphne.log", cwd=ROOT)
    text.start(worker_command("text"), env=env, log_name="worker.log", cwd=ROOT)
    image1.start(worker_command("image"), env=env, log_name="worker.log", cwd=ROOT)

    client = Client()
    client.force_login(bob)
    browser = Browser(f"http://{web.address}:8000", sessionid=client.cookies["sessionid"].value)
    wait_for(lambda: _alive(browser, "text@gpu-text") and _alive(browser, "image@gpu-image1"),
             timeout=180, what="daphne and both workers to report healthy")
    health = _health(browser)
    assert health["status"] == "ok", health
    hosts = {w["name"]: w["host"] for q in health["workers"].values() for w in q.get("workers", [])}
    assert hosts == {"text@gpu-text": "gpu-text", "image@gpu-image1": "gpu-image1"}

    # A chat reply, decoded on the text host.
    chat = f"/projects/{project.pk}/chat/"
    browser.submit(chat, action=chat, text="Name three colours.", max_new_tokens="12")
    reply = wait_for(lambda: Message.objects.filter(conversation__project=project, role="assistant",
                                                    status__in=["done", "failed", "stopped"]).first(),
                     timeout=MODEL_TIMEOUT, what="the chat reply", interval=1)
    assert reply.status == "done", reply.__dict__
    assert reply.text.strip()
    assert reply.worker.startswith("text@gpu-text")

    # An image job, denoised on the first image host, stored in S3, served by the web host.
    studio = f"/projects/{project.pk}/studio/"
    browser.submit(studio, action=studio, prompt="a red circle", steps="2", width="32", height="32", num_images="1")
    job = wait_for(lambda: Job.objects.filter(project=project).exclude(status__in=["queued", "running"]).first(),
                   timeout=MODEL_TIMEOUT, what="the first image job", interval=1)
    assert job.status == "done", job.reason
    assert job.worker == "image@gpu-image1"
    asset = Asset.objects.get(job=job)
    assert asset.worker_host == "gpu-image1"
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_S3_ENDPOINT_URL"], region_name=os.environ["AWS_S3_REGION_NAME"])
    stored = s3.get_object(Bucket=os.environ["AWS_STORAGE_BUCKET_NAME"], Key=asset.file.name)["Body"].read()
    status, served, _ = browser.get(f"/projects/{project.pk}/gallery/{asset.pk}/image.png")
    assert status == 200
    assert served == stored
    assert served.startswith(b"\x89PNG")
    for host in (web, text, image1):  # no host kept a copy on a disk of its own
        assert not list(host.var_dir.rglob("*.png")), host.name

    # Cut the first image host off mid-job: the job fails with a reason ...
    browser.submit(studio, action=studio, prompt="a slow blue square", steps="150", width="64", height="64",
                   num_images="1")
    slow = wait_for(lambda: Job.objects.filter(project=project, status="running", steps_done__gte=1).first(),
                    timeout=MODEL_TIMEOUT, what="the slow job to be running", interval=0.5)
    image1.kill_all()
    wait_for(lambda: not _alive(browser, "image@gpu-image1"), timeout=30, what="the dead host to look dead")
    slow.refresh_from_db()
    assert slow.status == "running"  # nobody has noticed yet
    # ... once a worker on the same queue looks: a starting worker fails jobs silent for STALE_SECONDS.
    time.sleep(STALE_SECONDS + 1)
    image2.start(worker_command("image"), env=env, log_name="worker.log", cwd=ROOT)
    wait_for(lambda: Job.objects.filter(pk=slow.pk, status="failed").exists(), timeout=180, what="the lost job to fail")
    slow.refresh_from_db()
    assert re.search(r"stopped responding|worker", slow.reason), slow.reason

    # ... and the second image host serves the next job.
    browser.submit(studio, action=studio, prompt="a green triangle", steps="2", width="32", height="32", num_images="1")
    after = wait_for(lambda: Job.objects.filter(project=project, pk__gt=slow.pk).exclude(
        status__in=["queued", "running"]).first(), timeout=MODEL_TIMEOUT, what="the next job", interval=1)
    assert after.status == "done", after.reason
    assert after.worker == "image@gpu-image2"
    status, served, _ = browser.get(f"/projects/{project.pk}/gallery/{Asset.objects.get(job=after).pk}/image.png")
    assert status == 200 and served.startswith(b"\x89PNG")
