from __future__ import annotations

import io
import re
import zipfile

import pytest
from django.urls import reverse

from tests.helpers import membership
from webapp.audit.models import AuditEntry
from webapp.reviews import services
from webapp.reviews.models import ApprovedExport, AssetKind, Comment, ReviewRequest, Verdict
from webapp.reviews.tasks import build_approved_export

pytestmark = pytest.mark.django_db


@pytest.fixture
def review(project, image, alice, bob):
    (review,) = services.review_request_create(
        actor=membership(bob, project), project=project, kind=AssetKind.IMAGE, asset_ids=[image.pk],
        reviewer_ids=[alice.pk],
    )
    return review


@pytest.fixture
def comment(review, carol):
    return services.comment_add(actor=membership(carol, review.project), review=review, text="hm")


@pytest.fixture
def export(project, alice):
    return services.export_create(actor=membership(alice, project), project=project)


def _args(name, project, image, review, comment, export) -> list:
    p, r = project.pk, review.pk
    return {
        "reviews:project": [p], "reviews:export_create": [p], "reviews:ask_images": [p],
        "reviews:asset_panel": [p, "image", image.pk], "reviews:ask": [p, "image", image.pk],
        "reviews:comment_resolve": [p, r, comment.pk],
        "reviews:export_status": [p, export.pk], "reviews:export_download": [p, export.pk],
    }.get(name, [p, r])


@pytest.mark.parametrize(("method", "name"), [
    ("get", "reviews:project"), ("get", "reviews:asset_panel"), ("post", "reviews:ask"), ("get", "reviews:detail"),
    ("post", "reviews:verdict"), ("post", "reviews:comment"), ("post", "reviews:comment_resolve"),
    ("post", "reviews:withdraw"), ("post", "reviews:iterate"), ("post", "reviews:export_create"),
    ("get", "reviews:export_status"), ("get", "reviews:export_download"), ("post", "reviews:ask_images"),
    ("get", "reviews:ask_images"),
])
def test_an_outsider_gets_404_on_every_review_url(project, image, review, comment, export, mallory, client_for,
                                                   method, name):
    url = reverse(name, args=_args(name, project, image, review, comment, export))
    data = {"decision": "approve", "text": "x", "reviewers": [mallory.pk], "mode": "vary", "resolved": "1"}
    response = getattr(client_for(mallory), method)(url, data if method == "post" else None)
    assert response.status_code == 404, (name, response.status_code)
    assert not Verdict.objects.exists() and Comment.objects.count() == 1
    assert ReviewRequest.objects.get().state == "in_review" and ApprovedExport.objects.count() == 1


def test_an_outsider_gets_404_for_an_object_of_another_project(project, other_project, review, mallory, client_for):
    # mallory's own project id with an Acme review id
    url = reverse("reviews:detail", args=[other_project.pk, review.pk])
    assert client_for(mallory).get(url).status_code == 404


def test_an_anonymous_visitor_is_sent_to_log_in(project, review, client):
    response = client.get(reverse("reviews:detail", args=[project.pk, review.pk]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert client.get(reverse("reviews:inbox")).status_code == 302


def test_the_review_page_shows_the_image_verdict_form_and_comments(project, review, comment, alice, client_for):
    html = client_for(alice).get(review.get_absolute_url()).content.decode()
    assert 'class="verdict-form"' in html and 'name="decision"' in html
    assert 'class="region-canvas"' in html and "hm" in html
    assert "<script>" not in html.split("</head>")[1], "no inline scripts in the body"


def test_a_viewer_sees_no_verdict_form_and_is_refused_a_verdict(project, review, carol, client_for):
    client = client_for(carol)
    html = client.get(review.get_absolute_url()).content.decode()
    assert 'class="verdict-form"' not in html and "not give verdicts" in html
    response = client.post(reverse("reviews:verdict", args=[project.pk, review.pk]), {"decision": "approve"})
    assert response.status_code == 403
    assert not Verdict.objects.exists()


def test_a_viewer_comments_with_a_region(project, review, carol, client_for):
    response = client_for(carol).post(
        reverse("reviews:comment", args=[project.pk, review.pk]),
        {"text": "Look *here*", "region_x": "1", "region_y": "2", "region_w": "10", "region_h": "12"},
    )
    assert response.status_code == 302
    comment = Comment.objects.get()
    assert (comment.author.username, comment.region_w, comment.region_h) == ("carol", 10, 12)


def test_a_region_outside_the_image_is_shown_as_an_error(project, review, carol, client_for):
    response = client_for(carol).post(
        reverse("reviews:comment", args=[project.pk, review.pk]),
        {"text": "Out", "region_x": "20", "region_y": "2", "region_w": "20", "region_h": "12"},
    )
    assert response.status_code == 400
    assert "inside the image" in response.content.decode()
    assert not Comment.objects.exists()


def test_a_viewer_cannot_ask_for_review(project, image, alice, carol, client_for):
    response = client_for(carol).post(reverse("reviews:ask", args=[project.pk, "image", image.pk]),
                                      {"reviewers": [alice.pk]})
    assert response.status_code == 403


def test_asking_a_reviewer_outside_the_team_shows_the_error_on_the_field(project, image, bob, mallory, client_for):
    response = client_for(bob).post(reverse("reviews:ask", args=[project.pk, "image", image.pk]),
                                    {"reviewers": [mallory.pk]})
    assert response.status_code == 400
    assert 'id="id_reviewers-error"' in response.content.decode()
    assert not ReviewRequest.objects.exists()


def test_asking_from_the_asset_panel(project, image, alice, bob, client_for):
    client = client_for(bob)
    panel = client.get(reverse("reviews:asset_panel", args=[project.pk, "image", image.pk])).content.decode()
    assert "Ask for review" in panel and "alice" in panel and ">bob<" not in panel  # the author is not offered
    response = client.post(reverse("reviews:ask", args=[project.pk, "image", image.pk]), {"reviewers": [alice.pk]})
    review = ReviewRequest.objects.get()
    assert response.status_code == 302 and response["Location"] == review.get_absolute_url()


def test_request_changes_without_a_comment_names_the_field(project, review, alice, client_for):
    response = client_for(alice).post(reverse("reviews:verdict", args=[project.pk, review.pk]),
                                      {"decision": "request_changes", "comment": ""})
    assert response.status_code == 400
    assert 'id="id_comment-error"' in response.content.decode()


def test_a_verdict_on_a_withdrawn_review_gives_a_clear_message(project, review, alice, bob, client_for):
    services.review_withdraw(actor=membership(bob, project), review=review)
    response = client_for(alice).post(reverse("reviews:verdict", args=[project.pk, review.pk]), {"decision": "approve"})
    assert response.status_code == 400
    assert "withdrawn" in response.content.decode()


def test_approve_then_the_gallery_filters_and_marks_it(project, review, image, make_image, alice, bob, client_for):
    make_image(project=project, author=bob)
    client = client_for(alice)
    assert client.post(reverse("reviews:verdict", args=[project.pk, review.pk]), {"decision": "approve"}).status_code == 302
    html = client.get(reverse("studio:gallery", args=[project.pk]), {"review": "approved"}).content.decode()
    assert html.count('class="gallery-item"') == 1 and "✓ Approved" in html
    html = client.get(reverse("studio:gallery", args=[project.pk]), {"review": "none"}).content.decode()
    assert html.count('class="gallery-item"') == 1 and "✓ Approved" not in html


def test_the_asset_page_loads_the_review_panel_with_the_version_chain(project, review, image, alice, bob, client_for,
                                                                      make_image):
    html = client_for(bob).get(image.get_absolute_url()).content.decode()
    assert reverse("reviews:asset_panel", args=[project.pk, "image", image.pk]) in html
    services.verdict_give(actor=membership(alice, project), review=review, decision="request_changes", comment="again")
    client_for(bob).post(reverse("reviews:iterate", args=[project.pk, review.pk]), {"mode": "vary"})
    from tests.helpers import finish_job
    from webapp.studio.models import Job

    v2 = finish_job(Job.objects.latest("pk"))
    panel = client_for(bob).get(reverse("reviews:asset_panel", args=[project.pk, "image", v2.pk])).content.decode()
    assert "v1" in panel and "v2" in panel and "Versions" in panel


def test_the_inbox_and_the_badge(project, review, alice, bob, client_for):
    html = client_for(alice).get(reverse("reviews:inbox")).content.decode()
    assert review.get_absolute_url() in html.split('id="inbox-waiting"')[1].split("</ul>")[0]
    assert 'id="review-badge" class="badge warn" aria-label="1 waiting for your verdict"' in html
    html = client_for(bob).get(reverse("reviews:inbox")).content.decode()
    assert review.get_absolute_url() in html.split('id="inbox-submitted"')[1]
    assert 'ws-connect="/ws/reviews/inbox/"' not in html


def test_a_page_outside_any_project_opens_each_projects_review_socket_and_a_projects_page_only_its_own(
    project, team, alice, other_project, client_for
):
    from tests.factories import ProjectFactory

    second = ProjectFactory(team=team, name="Second", created_by=alice)
    sockets = re.compile(r'ws-connect="(/ws/projects/\d+/reviews/)"')
    html = client_for(alice).get(reverse("reviews:inbox")).content.decode()
    assert sorted(sockets.findall(html)) == sorted([f"/ws/projects/{project.pk}/reviews/",
                                                    f"/ws/projects/{second.pk}/reviews/"])
    html = client_for(alice).get(reverse("reviews:project", args=[second.pk])).content.decode()
    assert sockets.findall(html) == [f"/ws/projects/{second.pk}/reviews/"]


def test_the_export_is_built_and_downloaded_by_a_member(project, review, alice, carol, client_for, no_enqueue,
                                                        redis_server):
    services.verdict_give(actor=membership(alice, project), review=review, decision="approve")
    client = client_for(carol)
    response = client.post(reverse("reviews:export_create", args=[project.pk]))
    assert response.status_code == 302
    export = ApprovedExport.objects.get()
    status = client.get(reverse("reviews:export_status", args=[project.pk, export.pk])).content.decode()
    assert 'hx-trigger="every 1s"' in status
    build_approved_export(export.pk)
    status = client.get(reverse("reviews:export_status", args=[project.pk, export.pk])).content.decode()
    assert "Download zip" in status and "every 1s" not in status
    response = client.get(reverse("reviews:export_download", args=[project.pk, export.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert "manifest.json" in archive.namelist()
    assert AuditEntry.objects.filter(action="downloaded", object_kind="export", actor_name="carol").exists()


def test_the_project_review_list_filters_by_state(project, review, alice, client_for):
    html = client_for(alice).get(reverse("reviews:project", args=[project.pk]), {"state": "approved"}).content.decode()
    assert review.get_absolute_url() not in html
    html = client_for(alice).get(reverse("reviews:project", args=[project.pk]), {"state": "in_review"}).content.decode()
    assert review.get_absolute_url() in html


def test_a_chat_reply_links_to_its_review_page(project, alice, bob, client_for):
    from webapp.chat.models import Conversation, Message, Role
    from webapp.core.jobs import JobStatus as Status

    conversation = Conversation.objects.create(project=project, created_by=bob)
    question = Message.objects.create(conversation=conversation, role=Role.USER, author=bob, text="Slogan?")
    reply = Message.objects.create(conversation=conversation, parent=question, role=Role.ASSISTANT, author=bob,
                                   text="**Shine**", status=Status.DONE)
    client = client_for(bob)
    ask_url = reverse("reviews:ask", args=[project.pk, "reply", reply.pk])
    assert ask_url in client.get(conversation.get_absolute_url()).content.decode()
    assert "Ask for review" in client.get(ask_url).content.decode()
    response = client.post(ask_url, {"reviewers": [alice.pk]})
    review = ReviewRequest.objects.get(asset_kind="reply")
    assert response["Location"] == review.get_absolute_url()
    html = client_for(alice).get(review.get_absolute_url()).content.decode()
    assert "<strong>Shine</strong>" in html and 'class="verdict-form"' in html
    assert client.get(ask_url)["Location"] == review.get_absolute_url()


def test_asking_about_a_selection_of_images_makes_one_round(project, make_image, alice, bob, client_for):
    first, second = make_image(project=project, author=bob), make_image(project=project, author=bob)
    client = client_for(alice)
    url = reverse("reviews:ask_images", args=[project.pk])
    html = client.get(url).content.decode()
    assert f'name="assets" value="{first.pk}"' in html and f'name="assets" value="{second.pk}"' in html
    response = client.post(url, {"assets": [first.pk, second.pk], "anyone": "on"})
    assert response.status_code == 302
    assert set(ReviewRequest.objects.values_list("asset_id", flat=True)) == {first.pk, second.pk}
    assert ReviewRequest.objects.values("round_id").distinct().count() == 1
    assert f'name="assets" value="{first.pk}"' not in client.get(url).content.decode()  # in review now


def test_asking_about_no_image_names_the_problem(project, image, alice, bob, client_for):
    response = client_for(bob).post(reverse("reviews:ask_images", args=[project.pk]), {"reviewers": [alice.pk]})
    assert response.status_code == 400 and "Choose at least one asset" in response.content.decode()
    assert not ReviewRequest.objects.exists()


def test_a_viewer_cannot_ask_about_a_selection(project, image, alice, carol, client_for):
    response = client_for(carol).post(reverse("reviews:ask_images", args=[project.pk]),
                                      {"assets": [image.pk], "reviewers": [alice.pk]})
    assert response.status_code == 403
