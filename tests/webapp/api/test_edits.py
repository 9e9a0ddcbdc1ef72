"""``/v1/images/edits`` and ``/v1/images/variations``: refusals that come back before anything is queued.

The whole round trip, through the official ``openai`` client, is in ``test_edit_stack.py``.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from tests.helpers import ApiClient, make_key
from webapp.prompts.models import PromptRecord
from webapp.studio.models import Job

pytestmark = pytest.mark.django_db

EDITS, VARIATIONS = reverse("api:images_edits"), reverse("api:images_variations")


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _file(data: bytes, name: str = "image.png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="image/png")


def _openai_mask(size: int = 32) -> bytes:
    alpha = np.full((size, size), 255, dtype=np.uint8)
    alpha[8:24, 8:24] = 0  # transparent: the area to change
    rgba = np.zeros((size, size, 4), dtype=np.uint8)
    rgba[..., 3] = alpha
    return png(Image.fromarray(rgba, "RGBA"))


SOURCE = png(Image.new("RGB", (32, 32), "white"))


def _post(api: ApiClient, path: str, fields: dict) -> object:
    return api.client.post(path, data=fields, headers=api.headers)


def _error(response) -> dict:
    return response.json()["error"]


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"image": None}, "image"),
        ({"image": "just a string, not a file"}, "image"),
        ({"image": b"plain text"}, "image"),
        ({"image": b'<svg xmlns="http://www.w3.org/2000/svg"/>'}, "image"),
        ({"mask": png(Image.new("L", (32, 32), 0))}, "mask"),
        ({"mask": _openai_mask(16)}, "mask"),
        ({"strength": "1.5"}, "strength"),
        ({"strength": "lots"}, "strength"),
        ({"n": "99"}, "n"),
        ({"size": "64x64"}, "size"),
        ({"mode": "sketch"}, "mode"),
        ({"output_format": "jpeg"}, "output_format"),
        ({"colour": "red"}, "colour"),
        ({"model": ["[false]", "{}"]}, "model"),  # a field sent twice (found by schemathesis: a 500 before)
        ({"prompt": ["a", "b"]}, "prompt"),
    ],
)
def test_a_bad_edit_is_refused_naming_the_parameter_and_nothing_is_queued(bob_api, no_enqueue, fields, param):
    body = {"image": SOURCE, "prompt": "a blue star", **fields}
    body = {k: _file(v) if isinstance(v, bytes) else v for k, v in body.items() if v is not None}

    response = _post(bob_api, EDITS, body)

    assert response.status_code == 400, response.content
    assert _error(response)["param"] == param
    assert not Job.objects.exists() and not PromptRecord.objects.exists() and no_enqueue == []


def test_an_edit_must_be_multipart(bob_api, no_enqueue):
    response = bob_api.post(EDITS, {"prompt": "x"})

    assert response.status_code == 400 and _error(response)["code"] == "invalid_content_type"


def test_a_variation_takes_no_prompt_field(bob_api, no_enqueue):
    response = _post(bob_api, VARIATIONS, {"image": _file(SOURCE), "prompt": "x"})

    assert response.status_code == 400 and _error(response)["param"] == "prompt"


def test_a_viewers_key_cannot_edit_or_vary(carol_key, redis_server, no_enqueue):
    api = ApiClient(carol_key.secret)
    for path, fields in ((EDITS, {"prompt": "x", "mask": _file(_openai_mask())}), (VARIATIONS, {})):
        response = _post(api, path, {"image": _file(SOURCE), **fields})
        assert response.status_code == 403, path
        assert _error(response)["type"] == "permission_error"
    assert not Job.objects.exists() and no_enqueue == []


def test_edit_endpoints_refuse_an_outsider_without_a_key_of_the_project(project, mallory, other_project, redis_server,
                                                                         no_enqueue):
    """api:images_edits and api:images_variations: no key, or a key of another project, never reaches this one."""
    for path in (reverse("api:images_edits"), reverse("api:images_variations")):
        assert _post(ApiClient(None), path, {"image": _file(SOURCE), "prompt": "x"}).status_code == 401
    outsider = ApiClient(make_key(mallory, other_project).secret)
    _post(outsider, EDITS, {"image": _file(b"nope"), "prompt": "x"})
    assert not Job.objects.filter(project=project).exists()


def test_the_openapi_document_describes_edits_and_variations(redis_server):
    document = ApiClient(None).get("/v1/openapi.json").json()

    assert {"/images/edits", "/images/variations"} <= set(document["paths"])
    body = document["paths"]["/images/edits"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body
    assert {"image", "mask", "prompt", "strength", "mode"} <= set(document["components"]["schemas"]["ImageEditRequest"]["properties"])
