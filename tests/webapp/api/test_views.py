"""The API page and the /v1 endpoints' checks that need no worker: keys, errors, limits."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.helpers import ApiClient, make_key
from webapp.api.models import ApiKey, TextJob
from webapp.api.services import secret_hash
from webapp.prompts.models import PromptRecord
from webapp.workspaces.models import Membership, Role

pytestmark = [pytest.mark.django_db]

CHAT = "/v1/chat/completions"
MODEL = "smollm2-135m-instruct"


def _hello(**extra):
    return {"model": MODEL, "messages": [{"role": "user", "content": "Hello"}], **extra}


def _error(response):
    body = response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


# --- The API page -------------------------------------------------------------------


def test_a_member_creates_a_key_and_sees_the_secret_once(client_for, project, bob):
    client = client_for(bob)
    response = client.post(reverse("api:keys", kwargs={"project_id": project.pk}), {"name": "notebook"}, follow=True)
    key = ApiKey.objects.get(project=project, user=bob)
    secret = response.context["new_secret"]["secret"]
    assert secret.startswith(key.prefix) and secret_hash(secret) == key.secret_hash
    assert secret.encode() in response.content
    again = client.get(reverse("api:keys", kwargs={"project_id": project.pk}))
    assert secret.encode() not in again.content
    assert key.prefix.encode() in again.content


def test_the_key_is_stored_only_as_a_hash(project, bob):
    new = make_key(bob, project)
    row = ApiKey.objects.filter(pk=new.key.pk).values().get()
    assert new.secret not in [str(value) for value in row.values()]


def test_the_api_page_shows_curl_and_openai_examples(client_for, project, bob):
    response = client_for(bob).get(reverse("api:keys", kwargs={"project_id": project.pk}))
    assert b"curl http://testserver/v1/chat/completions" in response.content
    assert b'OpenAI(base_url="http://testserver/v1"' in response.content


def test_a_viewer_may_create_a_key(client_for, project, carol):
    client_for(carol).post(reverse("api:keys", kwargs={"project_id": project.pk}), {"name": "reader"})
    assert ApiKey.objects.filter(user=carol, project=project).exists()


def test_a_key_with_an_expiry_in_the_past_is_refused(client_for, project, bob):
    yesterday = (timezone.now() - timedelta(days=1)).date().isoformat()
    response = client_for(bob).post(reverse("api:keys", kwargs={"project_id": project.pk}),
                                    {"name": "old", "expires_on": yesterday})
    assert response.status_code == 200
    assert "expires_on" in response.context["form"].errors
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize("url_name", ["api:keys", "api:key_revoke"])
def test_the_api_page_is_404_for_an_outsider(client_for, project, bob, mallory, other_team, url_name):
    key = make_key(bob, project).key
    kwargs = {"project_id": project.pk}
    if url_name == "api:key_revoke":
        kwargs["key_id"] = key.pk
    response = client_for(mallory).post(reverse(url_name, kwargs=kwargs), {"name": "x"})
    assert response.status_code == 404
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None


def test_a_member_cannot_revoke_someone_elses_key_but_the_owner_can(client_for, project, alice, bob, carol):
    key = make_key(bob, project).key
    url = reverse("api:key_revoke", kwargs={"project_id": project.pk, "key_id": key.pk})
    assert client_for(carol).post(url).status_code == 404
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None
    client_for(alice).post(url)
    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None


def test_a_member_revokes_their_key_and_it_stops_working(client_for, project, bob, bob_key, redis_server):
    client_for(bob).post(reverse("api:key_revoke", kwargs={"project_id": project.pk, "key_id": bob_key.key.pk}))
    response = ApiClient(bob_key.secret).get("/v1/models")
    assert response.status_code == 401
    assert "revoked" in _error(response)["message"]


# --- Keys on /v1 --------------------------------------------------------------------


def test_models_lists_the_text_and_image_models(bob_api):
    response = bob_api.get("/v1/models")
    assert response.status_code == 200
    ids = {entry["id"]: entry["kind"] for entry in response.json()["data"]}
    assert ids[MODEL] == "text"
    assert ids["atelier-shapes"] == "image"


def test_a_request_counts_against_its_key(bob_api, bob_key):
    bob_api.get("/v1/models")
    bob_api.get("/v1/models")
    key = ApiKey.objects.get(pk=bob_key.key.pk)
    assert key.request_count == 2 and key.last_used_at is not None


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer atl_wrong", "Basic abc"])
def test_a_missing_or_unknown_key_is_401(redis_server, header):
    client = ApiClient(None)
    response = client.get("/v1/models", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert _error(response)["code"] == "invalid_api_key"


def test_an_expired_key_is_401(project, bob, redis_server):
    new = make_key(bob, project, expires_at=timezone.now() + timedelta(days=1))
    ApiKey.objects.filter(pk=new.key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = ApiClient(new.secret).get("/v1/models")
    assert response.status_code == 401
    assert "expired" in _error(response)["message"]


def test_a_key_stops_working_when_its_user_leaves_the_team(project, bob, bob_api):
    assert bob_api.get("/v1/models").status_code == 200
    Membership.objects.filter(user=bob, team=project.team).delete()
    assert bob_api.get("/v1/models").status_code == 401


def test_a_key_stops_generating_when_its_user_becomes_a_viewer(project, bob, bob_api, no_enqueue):
    Membership.objects.filter(user=bob, team=project.team).update(role=Role.VIEWER)
    response = bob_api.post(CHAT, _hello())
    assert response.status_code == 403
    assert not TextJob.objects.exists()


def test_a_viewers_key_lists_models_but_cannot_generate(carol_key, redis_server, no_enqueue):
    client = ApiClient(carol_key.secret)
    assert client.get("/v1/models").status_code == 200
    for path, body in ((CHAT, _hello()), ("/v1/completions", {"model": MODEL, "prompt": "Hi"}),
                       ("/v1/images/generations", {"prompt": "a red circle"})):
        response = client.post(path, body)
        assert response.status_code == 403, path
        assert _error(response)["type"] == "permission_error"
    assert not no_enqueue and not PromptRecord.objects.exists()


def test_a_session_does_not_authenticate_the_api(client_for, bob, redis_server):
    response = client_for(bob).get("/v1/models")
    assert response.status_code == 401


def test_the_api_needs_no_csrf_token(bob_api, no_enqueue, settings):
    settings.API_QUEUE_TIMEOUT = 0.1
    bob_api.client.handler.enforce_csrf_checks = True
    response = bob_api.post(CHAT, _hello())
    assert response.status_code == 503  # past CSRF and auth: no worker took the job


# --- Errors -------------------------------------------------------------------------


def test_an_unknown_model_is_404_model_not_found(bob_api, no_enqueue):
    response = bob_api.post(CHAT, _hello(model="gpt-17"))
    assert response.status_code == 404
    assert _error(response)["code"] == "model_not_found"
    assert bob_api.get("/v1/models/gpt-17").status_code == 404


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"temperature": 2.5}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_completion_tokens": 10_000_000}, "max_completion_tokens"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stop": ""}, "stop"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**40}, "seed"),
        ({"n": 5}, "n"),
        ({"n": 0}, "n"),
        ({"top_k": -1}, "top_k"),
        ({"num_beams": 9}, "num_beams"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"frobnicate": 1}, "frobnicate"),
    ],
)
def test_every_engine_bound_is_a_400_naming_the_param(bob_api, no_enqueue, extra, param):
    response = bob_api.post(CHAT, _hello(**extra))
    assert response.status_code == 400
    error = _error(response)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert not TextJob.objects.exists()


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
        ({"logprobs": True}, "logprobs"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
         "messages[0].content"),
    ],
)
def test_an_unsupported_feature_is_a_400_that_says_so(bob_api, no_enqueue, extra, param):
    response = bob_api.post(CHAT, _hello(**extra))
    assert response.status_code == 400
    error = _error(response)
    assert error["param"] == param and error["code"] == "unsupported_parameter"
    assert "not supported" in error["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": "a circle", "n": 9}, "n"),
        ({"prompt": "a circle", "size": "33x32"}, "size"),
        ({"prompt": "a circle", "size": "big"}, "size"),
        ({"prompt": "a circle", "steps": 0}, "steps"),
        ({"prompt": "a circle", "guidance_scale": 99}, "guidance_scale"),
        ({"prompt": "a circle", "scheduler": "magic"}, "scheduler"),
        ({"prompt": "a circle", "response_format": "jpeg"}, "response_format"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "a circle", "style": "vivid"}, "style"),
    ],
)
def test_image_bounds_are_400s_naming_the_param(bob_api, no_enqueue, body, param):
    response = bob_api.post("/v1/images/generations", body)
    assert response.status_code == 400
    assert _error(response)["param"] == param
    assert not no_enqueue


def test_malformed_json_is_a_clear_400(bob_api):
    response = bob_api.post(CHAT, raw=b'{"model": ')
    assert response.status_code == 400
    assert _error(response)["code"] == "invalid_json"


def test_a_json_array_is_a_clear_400(bob_api):
    response = bob_api.post(CHAT, raw=b"[1, 2]")
    assert response.status_code == 400
    assert "JSON object" in _error(response)["message"]


def test_a_wrong_content_type_is_a_clear_400(bob_api):
    response = bob_api.post(CHAT, raw=b"model=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert _error(response)["code"] == "invalid_content_type"


def test_a_body_over_one_megabyte_is_a_clear_400(bob_api, no_enqueue):
    body = _hello()
    body["messages"][0]["content"] = "x" * (1024 * 1024)
    response = bob_api.post(CHAT, body)
    assert response.status_code == 400
    assert _error(response)["code"] == "request_too_large"
    assert not TextJob.objects.exists()


def test_an_unknown_v1_path_is_a_json_404(bob_api):
    response = bob_api.get("/v1/audio/speech")
    assert response.status_code == 404
    assert _error(response)["code"] == "not_found"


def test_a_wrong_method_is_405(bob_api):
    response = bob_api.client.delete("/v1/models", headers=bob_api.headers)
    assert response.status_code == 405


def test_no_worker_in_time_is_503_and_the_job_is_dropped(bob_api, no_enqueue, settings):
    settings.API_QUEUE_TIMEOUT = 0.2
    response = bob_api.post(CHAT, _hello())
    assert response.status_code == 503
    assert _error(response)["code"] == "no_worker_available"
    assert TextJob.objects.get().status == "failed"


def test_no_worker_in_time_for_an_image_is_503(bob_api, no_enqueue, settings):
    from webapp.studio.models import Job

    settings.API_QUEUE_TIMEOUT = 0.2
    response = bob_api.post("/v1/images/generations", {"prompt": "a red circle", "size": "32x32"})
    assert response.status_code == 503
    assert Job.objects.get().status == "failed"


def test_an_api_prompt_lands_in_the_history_marked_with_its_key(bob_api, bob_key, no_enqueue, settings):
    settings.API_QUEUE_TIMEOUT = 0.1
    bob_api.post(CHAT, _hello())
    record = PromptRecord.objects.get()
    assert record.source == "api" and bob_key.key.name in record.source_label and record.text == "Hello"


# --- Limits -------------------------------------------------------------------------


def test_requests_over_the_per_minute_limit_get_429_with_retry_after(bob_api, settings):
    settings.API_REQUESTS_PER_MINUTE = 2
    first = bob_api.get("/v1/models")
    assert first["x-ratelimit-limit-requests"] == "2"
    assert first["x-ratelimit-remaining-requests"] == "1"
    bob_api.get("/v1/models")
    response = bob_api.get("/v1/models")
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert _error(response)["code"] == "rate_limit_exceeded"


def test_requests_over_the_concurrency_limit_get_429(bob_api, bob_key, settings):
    from webapp.api.limits import limits_acquire

    settings.API_CONCURRENT_REQUESTS = 1
    held = limits_acquire(key=bob_key.key)
    try:
        response = bob_api.get("/v1/models")
        assert response.status_code == 429
        assert _error(response)["code"] == "concurrency_limit_exceeded"
    finally:
        held.release()
    assert bob_api.get("/v1/models").status_code == 200


def test_the_openapi_document_describes_the_endpoints(redis_server):
    response = ApiClient(None).get("/v1/openapi.json")
    paths = response.json()["paths"]
    assert {"/models", "/chat/completions", "/completions", "/images/generations"} <= set(paths)


def test_an_outsiders_key_cannot_fetch_an_image_of_another_project(project, bob, mallory, other_project, redis_server,
                                                                      no_enqueue):
    """api:image_file: an outsider's key (and any other key) gets 404."""
    from tests.factories import membership_of
    from tests.helpers import fake_result, tiny_request
    from webapp.api.models import ImageCall
    from webapp.studio import services as studio

    bob_key = make_key(bob, project)
    job = studio.job_create(project=project, actor=membership_of(bob, project.team), request=tiny_request(),
                            via=bob_key.key.label)
    ImageCall.objects.create(key=bob_key.key, job=job)
    studio.job_start(job_id=job.pk, worker="w")
    finished = studio.job_complete(job=job, result=fake_result(job))
    asset = finished.assets.get()
    url = reverse("api:image_file", kwargs={"asset_id": asset.pk})
    assert ApiClient(bob_key.secret).get(url).status_code == 200
    mallory_key = make_key(mallory, other_project)
    assert ApiClient(mallory_key.secret).get(url).status_code == 404
    another_of_bobs = make_key(bob, project, name="another")
    assert ApiClient(another_of_bobs.secret).get(url).status_code == 404


def test_an_api_image_shows_its_key_on_the_asset_page_and_in_the_history(client_for, project, bob, redis_server,
                                                                           no_enqueue):
    from tests.factories import membership_of
    from tests.helpers import fake_result, tiny_request
    from webapp.studio import services as studio

    key = make_key(bob, project, name="render farm").key
    job = studio.job_create(project=project, actor=membership_of(bob, project.team), request=tiny_request(),
                            via=key.label)
    studio.job_start(job_id=job.pk, worker="w")
    asset = studio.job_complete(job=job, result=fake_result(job)).assets.get()
    page = client_for(bob).get(reverse("studio:asset_detail", kwargs={"project_id": project.pk, "asset_id": asset.pk}))
    assert "Made through" in page.content.decode() and "render farm" in page.content.decode()
    history = client_for(bob).get(reverse("prompts:history", kwargs={"project_id": project.pk}))
    assert "render farm" in history.content.decode()
