"""The API on the real stack, through the official ``openai`` client: daphne, a real Celery
worker, the real default text and image models, the embedded Redis."""
from __future__ import annotations

import base64
import io
import time
import urllib.error
import urllib.request

import openai
import pytest
from openai import OpenAI

from generation.image import read_png_metadata
from tests.helpers import make_key
from webapp.api.models import ApiKey, TextJob
from webapp.prompts.models import PromptRecord
from webapp.studio.models import Asset

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]

MODEL = "smollm2-135m-instruct"
HELLO = [{"role": "user", "content": "Name three colours."}]


def _client(asgi_server: str, secret: str) -> OpenAI:
    return OpenAI(base_url=f"{asgi_server}/v1", api_key=secret, max_retries=0, timeout=300)


@pytest.fixture
def bob_client(asgi_server, celery_worker, project, bob):
    new = make_key(bob, project, name="stack test")
    client = _client(asgi_server, new.secret)
    client.key = new.key  # type: ignore[attr-defined]
    client.secret = new.secret  # type: ignore[attr-defined]
    return client


def test_the_client_lists_the_models(bob_client):
    ids = {model.id for model in bob_client.models.list()}
    assert {MODEL, "atelier-shapes"} <= ids


def test_a_chat_completion_comes_back_with_its_usage(bob_client, bob):
    reply = bob_client.chat.completions.create(
        model=MODEL, messages=[{"role": "system", "content": "Be brief."}, *HELLO], max_tokens=8, temperature=0
    )
    choice = reply.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    job = TextJob.objects.get()
    assert job.status == "done" and job.text == choice.message.content
    assert reply.usage.prompt_tokens == job.prompt_tokens > 0
    assert reply.usage.completion_tokens == job.completion_tokens
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    if choice.finish_reason == "length":
        assert reply.usage.completion_tokens == 8
    record = PromptRecord.objects.get()
    assert record.source == "api" and "stack test" in record.source_label and record.author == bob
    key = ApiKey.objects.get(pk=bob_client.key.pk)
    assert key.token_count == reply.usage.total_tokens and key.request_count == 1


def test_a_streamed_chat_completion_starts_with_the_role_and_ends_with_usage(bob_client):
    stream = bob_client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=12, temperature=0, stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes in (["stop"], ["length"])
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert all(c.usage is None for c in chunks[:-1])
    job = TextJob.objects.get()
    assert text == job.text and text
    assert chunks[-1].usage.completion_tokens == job.completion_tokens


def test_the_same_request_streamed_or_not_gives_the_same_text(bob_client):
    plain = bob_client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=10, temperature=0)
    stream = bob_client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=10, temperature=0, stream=True)
    streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert streamed == plain.choices[0].message.content


def test_a_completion_answers_a_plain_prompt(bob_client):
    reply = bob_client.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=6, temperature=0)
    assert reply.object == "text_completion"
    assert reply.choices[0].text and reply.choices[0].finish_reason in ("stop", "length")
    assert reply.usage.completion_tokens <= 6


def test_n_two_gives_two_choices_from_two_jobs(bob_client):
    reply = bob_client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=6, n=2, seed=11, temperature=1.0)
    assert [c.index for c in reply.choices] == [0, 1]
    jobs = list(TextJob.objects.order_by("index"))
    assert len(jobs) == 2 and jobs[0].call_id == jobs[1].call_id
    assert [c.message.content for c in reply.choices] == [j.text for j in jobs]
    assert reply.usage.completion_tokens == sum(j.completion_tokens for j in jobs)
    assert jobs[1].params["seed"] == 12


def test_extensions_pass_through_extra_body(bob_client):
    bob_client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=4, extra_body={"num_beams": 2, "top_k": 5}
    )
    job = TextJob.objects.get()
    assert job.params["strategy"] == "beam" and job.params["num_beams"] == 2 and job.params["top_k"] == 5


def test_closing_a_stream_early_stops_the_job(bob_client):
    stream = bob_client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Count from one to five hundred in words."}],
        max_tokens=1500, temperature=0, stream=True,
    )
    received = 0
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            received += 1
            if received == 3:
                break
    stream.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = TextJob.objects.get()
        if not job.is_live:
            break
        time.sleep(0.1)
    assert job.status == "stopped" and job.finish_reason == "cancelled"
    assert job.completion_tokens < 1500


def test_an_image_comes_back_as_a_png_carrying_its_parameters(bob_client, project):
    result = bob_client.images.generate(
        prompt="a red circle", size="32x32", n=2, response_format="b64_json",
        extra_body={"steps": 4, "seed": 5, "scheduler": "ddim", "guidance_scale": 2.5, "negative_prompt": "blue"},
    )
    assert len(result.data) == 2
    data = base64.b64decode(result.data[0].b64_json)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    meta = read_png_metadata(io.BytesIO(data))
    params = meta["params"]
    assert "a red circle" in meta["parameters"]
    assert params["prompt"] == "a red circle" and params["seed"] == 5 and params["steps"] == 4
    assets = Asset.objects.filter(project=project).select_related("job__prompt_record")
    assert assets.count() == 2
    assert "stack test" in assets[0].job.prompt_record.source_label
    assert ApiKey.objects.get(pk=bob_client.key.pk).image_count == 2


def test_an_image_url_is_fetchable_with_the_same_key_only(bob_client, project, bob, asgi_server):
    result = bob_client.images.generate(prompt="a blue square", size="32x32", response_format="url",
                                        extra_body={"steps": 3})
    url = result.data[0].url
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {bob_client.secret}"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        assert response.read().startswith(b"\x89PNG")
    other = make_key(bob, project, name="other")
    for headers in ({"Authorization": f"Bearer {other.secret}"}, {}):
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30)  # noqa: S310
        assert caught.value.code in (401, 404)


def test_each_error_raises_the_clients_matching_exception(bob_client, asgi_server, project, carol, mallory,
                                                          other_project, bob):
    with pytest.raises(openai.AuthenticationError):
        _client(asgi_server, "atl_not-a-key").models.list()
    with pytest.raises(openai.PermissionDeniedError):
        _client(asgi_server, make_key(carol, project).secret).chat.completions.create(model=MODEL, messages=HELLO)
    with pytest.raises(openai.NotFoundError):
        bob_client.chat.completions.create(model="gpt-17", messages=HELLO)
    with pytest.raises(openai.BadRequestError) as caught:
        bob_client.chat.completions.create(model=MODEL, messages=HELLO, temperature=3)
    assert caught.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError) as caught:
        bob_client.chat.completions.create(model=MODEL, messages=HELLO, tools=[
            {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}])
    assert caught.value.body["param"] == "tools"
    assert not TextJob.objects.exists()


def test_a_bound_only_the_worker_can_check_is_still_a_400_naming_the_param(bob_client):
    # 8191 new tokens fit the model's context alone, not with the prompt: the worker's tokenizer says so.
    with pytest.raises(openai.BadRequestError) as caught:
        bob_client.chat.completions.create(model=MODEL, messages=HELLO, max_completion_tokens=8191)
    assert caught.value.body["param"] == "max_completion_tokens"


def test_the_concurrency_limit_raises_rate_limit_error(bob_client, settings):
    from webapp.api.limits import limits_acquire

    held = []
    try:
        for _ in range(settings.API_CONCURRENT_REQUESTS):
            held.append(limits_acquire(key=bob_client.key))
        with pytest.raises(openai.RateLimitError) as caught:
            bob_client.models.list()
        assert caught.value.response.headers["retry-after"]
    finally:
        for lease in held:
            lease.release()


def test_an_outsiders_or_revoked_key_reaches_nothing(bob_client, asgi_server, bob, project, mallory, other_project):
    from webapp.api import services
    from webapp.workspaces.models import Membership

    services.key_revoke(actor=Membership.objects.get(user=bob, team=project.team), key=bob_client.key)
    with pytest.raises(openai.AuthenticationError):
        bob_client.models.list()
    with pytest.raises(openai.AuthenticationError):
        bob_client.chat.completions.create(model=MODEL, messages=HELLO)
    outsider = _client(asgi_server, make_key(mallory, other_project).secret)
    outsider.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=2)
    assert TextJob.objects.get().project == other_project
    assert not PromptRecord.objects.filter(project=project).exists()


def test_a_streamed_image_request_sends_progress_then_the_images(bob_client, asgi_server):
    import json

    body = json.dumps({"prompt": "a green triangle", "size": "32x32", "stream": True, "steps": 6,
                       "response_format": "b64_json"}).encode()
    request = urllib.request.Request(  # noqa: S310
        f"{asgi_server}/v1/images/generations", data=body, method="POST",
        headers={"Authorization": f"Bearer {bob_client.secret}", "Content-Type": "application/json"},
    )
    events = []
    with urllib.request.urlopen(request, timeout=300) as response:  # noqa: S310
        assert response.headers["Content-Type"].startswith("text/event-stream")
        for raw in response:
            line = raw.decode().strip()
            if line.startswith("data: "):
                events.append(line[6:])
    assert events[-1] == "[DONE]"
    parsed = [json.loads(e) for e in events[:-1]]
    kinds = [e["type"] for e in parsed]
    assert "image_generation.progress" in kinds
    assert kinds[-1] == "image_generation.completed"
    assert base64.b64decode(parsed[-1]["b64_json"]).startswith(b"\x89PNG")
    steps = [e["step"] for e in parsed if e["type"] == "image_generation.progress"]
    assert steps == sorted(steps) and steps[-1] == 6
