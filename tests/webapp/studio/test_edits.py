"""Edit jobs in the studio: the service, the upload checks, the pages and who may use them."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image, PngImagePlugin

from tests.factories import membership_of
from tests.helpers import fake_result
from webapp.studio import services
from webapp.studio.models import Job, JobOrigin

pytestmark = pytest.mark.django_db


def png(image: Image.Image, **save: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **save)
    return buffer.getvalue()


def upload(data: bytes, name: str = "source.png"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="image/png")


SOURCE = png(Image.new("RGB", (32, 32), "white"))
MASK_IMAGE = Image.new("L", (32, 32), 0)
MASK_IMAGE.paste(255, (8, 8, 24, 24))
MASK = png(MASK_IMAGE)
FORM = {"mode": "inpaint", "prompt": "a large blue star", "model": "atelier-shapes", "num_images": "1",
        "mask_blur": "4", "inpaint_area": "whole", "padding": "32", "outpaint_pixels": "16", "fill": "edge",
        "scale": "2", "steps": "4", "seed": "3"}  # fmt: skip


def _asset(project, author):
    from tests.helpers import tiny_request

    job = services.job_create(project=project, actor=membership_of(author), request=tiny_request())
    job = services.job_start(job_id=job.pk, worker="w1")
    return services.job_complete(job=job, result=fake_result(job)).assets.get()


def _edit_job(project, author, **fields):
    from generation.image import EditRequest

    fields = {"mode": "inpaint", "source": SOURCE, "mask": MASK, "prompt": "a large blue star", "steps": 4, **fields}
    return services.edit_job_create(project=project, actor=membership_of(author), request=EditRequest(**fields))


# The service ------------------------------------------------------------------------------------


def test_an_edit_job_is_an_image_job_with_its_files_stored(project, bob, no_enqueue, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = _edit_job(project, bob, strength=0.8)

    assert (job.origin, job.status, job.params["mode"], job.params["strength"]) == (JobOrigin.EDIT, "queued", "inpaint", 0.8)
    assert no_enqueue.ids() == [job.pk]
    assert job.steps_total == 3  # 4 steps at strength 0.8
    with default_storage.open(job.edit_source.name, "rb") as fh:
        source = fh.read()
    with default_storage.open(job.edit_mask.name, "rb") as fh:
        mask = fh.read()
    from generation.image import EditRequest

    stored = EditRequest(mode="inpaint", source=source, mask=mask)
    assert (job.params["source_hash"], job.params["mask_hash"]) == (stored.source_hash, stored.mask_hash)
    assert isinstance(job.params["seed"], int)
    assert (job.params["width"], job.params["height"]) == (32, 32)


@pytest.mark.parametrize(
    ("fields", "size"),
    [({"mode": "upscale", "scale": 4}, (128, 128)), ({"mode": "outpaint", "outpaint_sides": ("left", "top", "right"),
      "outpaint_pixels": 8}, (48, 40))],
)
def test_an_edit_job_records_the_size_it_will_make(project, bob, no_enqueue, fields, size):
    job = _edit_job(project, bob, mask=None, **fields)

    assert (job.params["width"], job.params["height"]) == size


def test_an_upload_is_stored_as_png_without_its_metadata(project, bob, no_enqueue):
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "secret prompt")
    jpeg = io.BytesIO()
    exif = Image.Exif()
    exif[0x010E] = "secret description"
    Image.new("RGB", (32, 32), "red").save(jpeg, format="JPEG", exif=exif)

    for data in (png(Image.new("RGB", (32, 32)), pnginfo=info), jpeg.getvalue()):
        job = _edit_job(project, bob, mode="img2img", mask=None, source=data)
        with default_storage.open(job.edit_source.name, "rb") as fh:
            stored = Image.open(io.BytesIO(fh.read()))
        assert stored.format == "PNG" and stored.mode == "RGB"
        assert not stored.info.get("parameters") and not stored.info.get("exif") and not stored.getexif()


def test_an_edit_of_a_gallery_image_records_it_as_the_parent(project, bob, no_enqueue):
    asset = _asset(project, bob)

    from generation.image import EditRequest

    job = _edit_job(project, bob, mode="variations", mask=None, source=SOURCE)
    job2 = services.edit_job_create(
        project=project, actor=membership_of(bob), source_asset=asset,
        request=EditRequest(mode="img2img", source=SOURCE, prompt="x", steps=4),
    )
    assert job.source_asset is None and job2.source_asset == asset

    job2 = services.job_start(job_id=job2.pk, worker="w1")
    done = services.job_complete(job=job2, result=fake_result(job2))
    edited = done.assets.get()
    assert (edited.parent, edited.edit_mode, edited.mask.name) == (asset, "img2img", "")


def test_an_inpaint_asset_keeps_its_mask_file(project, bob, no_enqueue):
    job = services.job_start(job_id=_edit_job(project, bob).pk, worker="w1")
    asset = services.job_complete(job=job, result=fake_result(job)).assets.get()

    assert asset.edit_mode == "inpaint" and asset.mask.name == job.edit_mask.name and asset.parent is None


def test_a_viewer_cannot_make_an_edit_job(project, carol, no_enqueue):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        _edit_job(project, carol)
    assert not Job.objects.exists() and no_enqueue == []


# Bad input: a clear error naming the field, nothing queued ---------------------------------------


def _header_only_png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00")) + chunk(b"IEND", b"")


def _animated() -> bytes:
    buffer = io.BytesIO()
    frames = [Image.new("RGB", (32, 32), c) for c in ("red", "blue")]
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


def _cmyk() -> bytes:
    buffer = io.BytesIO()
    Image.new("CMYK", (32, 32)).save(buffer, format="JPEG")
    return buffer.getvalue()


BAD_UPLOADS = [
    ("not an image", {"image": b"just some text"}, {}, "image", "not an image"),
    ("svg", {"image": b'<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32"/>'}, {}, "image", "SVG"),
    ("over the pixel limit", {"image": png(Image.new("RGB", (64, 64)))}, {}, "image", "over the limit"),
    ("over the byte limit", {"image": png(Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 60, 3), dtype=np.uint8)))},
     {}, "image", "bytes"),
    ("decompression bomb", {"image": _header_only_png(40000, 40000)}, {}, "image", "decompression bomb"),
    ("animated", {"image": _animated()}, {}, "image", "animated"),
    ("cmyk", {"image": _cmyk()}, {}, "image", "CMYK"),
    ("mask of another size", {"mask": png(Image.new("L", (16, 16), 255))}, {}, "mask", "16x16"),
    ("empty mask", {"mask": png(Image.new("L", (32, 32), 0))}, {}, "mask", "empty"),
    ("strength out of range", {}, {"strength": "1.5"}, "strength", "0.05"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "files", "fields", "field", "words"), BAD_UPLOADS, ids=[b[0] for b in BAD_UPLOADS])
def test_a_bad_upload_is_refused_naming_the_field_and_nothing_is_queued(
    project, bob, client_for, no_enqueue, settings, case, files, fields, field, words
):
    settings.MAX_UPLOAD_PIXELS = 48 * 48
    settings.MAX_UPLOAD_BYTES = 6000
    body = {**FORM, **fields, "image": upload(files.get("image", SOURCE)), "mask": upload(files.get("mask", MASK), "mask.png")}
    before = set(default_storage.listdir("studio")[0]) if default_storage.exists("studio") else set()

    response = client_for(bob).post(reverse("studio:edit", args=[project.pk]), body)

    assert response.status_code == 400
    html = response.content.decode()
    assert f"{field}:" in html and words in html
    assert not Job.objects.exists() and no_enqueue == []
    after = set(default_storage.listdir("studio")[0]) if default_storage.exists("studio") else set()
    assert after == before


# Pages ------------------------------------------------------------------------------------------


def test_the_edit_page_posts_an_upload_and_shows_the_result_page(project, bob, client_for, no_enqueue):
    response = client_for(bob).post(
        reverse("studio:edit", args=[project.pk]), {**FORM, "image": upload(SOURCE), "mask": upload(MASK, "m.png")}
    )

    job = Job.objects.get()
    assert response.status_code == 302 and response.url == reverse("studio:edit_result", args=[project.pk, job.pk])
    page = client_for(bob).get(response.url).content.decode()
    assert reverse("studio:edit_source", args=[project.pk, job.pk]) in page
    assert reverse("studio:edit_mask", args=[project.pk, job.pk]) in page
    mask = client_for(bob).get(reverse("studio:edit_mask", args=[project.pk, job.pk]))
    assert mask["Content-Type"] == "image/png" and mask["X-Content-Type-Options"] == "nosniff"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(b"".join(mask.streaming_content)))), np.asarray(MASK_IMAGE))


def test_the_edit_page_edits_a_gallery_image_without_an_upload(project, bob, client_for, no_enqueue):
    asset = _asset(project, bob)
    page = client_for(bob).get(reverse("studio:edit", args=[project.pk]) + f"?asset={asset.pk}").content.decode()
    assert f'name="asset" value="{asset.pk}"' in page

    response = client_for(bob).post(
        reverse("studio:edit", args=[project.pk]), {**FORM, "mode": "img2img", "asset": str(asset.pk)}
    )

    job = Job.objects.get(origin=JobOrigin.EDIT)
    assert response.status_code == 302 and job.source_asset == asset


def test_gallery_and_asset_pages_link_to_edit(project, bob, carol, client_for, no_enqueue):
    asset = _asset(project, bob)
    link = reverse("studio:edit", args=[project.pk]) + f"?asset={asset.pk}"

    assert link in client_for(bob).get(reverse("studio:gallery", args=[project.pk])).content.decode()
    assert link in client_for(bob).get(reverse("studio:asset_detail", args=[project.pk, asset.pk])).content.decode()
    assert link not in client_for(carol).get(reverse("studio:gallery", args=[project.pk])).content.decode()


def test_the_edit_page_refuses_a_viewer(project, carol, client_for, no_enqueue):
    client = client_for(carol)
    assert "viewer" in client.get(reverse("studio:edit", args=[project.pk])).content.decode()

    response = client.post(reverse("studio:edit", args=[project.pk]), {**FORM, "image": upload(SOURCE), "mask": upload(MASK)})

    assert response.status_code == 403 and not Job.objects.exists() and no_enqueue == []


def test_a_viewer_may_see_an_edit_and_its_files(project, bob, carol, client_for, no_enqueue):
    job = _edit_job(project, bob)
    for name in ("studio:edit_result", "studio:edit_source", "studio:edit_mask"):
        assert client_for(carol).get(reverse(name, args=[project.pk, job.pk])).status_code == 200


@pytest.mark.parametrize("url_name", ["studio:edit_result", "studio:edit_source", "studio:edit_mask"])
def test_edit_urls_give_an_outsider_404(project, bob, mallory, client_for, no_enqueue, url_name):
    job = _edit_job(project, bob)

    assert client_for(mallory).get(reverse(url_name, args=[project.pk, job.pk])).status_code == 404


def test_the_edit_page_gives_an_outsider_404_for_the_project_and_for_an_asset(
    project, other_project, bob, mallory, client_for, no_enqueue
):
    asset = _asset(project, bob)
    assert client_for(mallory).get(reverse("studio:edit", args=[project.pk])).status_code == 404
    response = client_for(mallory).post(
        reverse("studio:edit", args=[other_project.pk]), {**FORM, "mode": "img2img", "asset": str(asset.pk)}
    )
    assert response.status_code == 404 and not Job.objects.filter(origin=JobOrigin.EDIT).exists()


def test_a_text_to_image_job_has_no_edit_page(project, bob, client_for, no_enqueue):
    asset = _asset(project, bob)
    for name in ("studio:edit_result", "studio:edit_source", "studio:edit_mask"):
        assert client_for(bob).get(reverse(name, args=[project.pk, asset.job_id])).status_code == 404
