"""The project's overview is its activity feed, live, in a real browser: a job that ends appears with its image."""
from __future__ import annotations

import pytest

from tests.factories import PASSWORD
from tests.helpers import finished_image_job

pytestmark = [pytest.mark.browser, pytest.mark.stack, pytest.mark.django_db(transaction=True)]


def test_the_project_overview_adds_a_finished_job_live_with_its_thumbnail(asgi_server, new_page, team, project,
                                                                          alice, bob):
    page = new_page()
    page.goto(f"{asgi_server}/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    page.goto(f"{asgi_server}/projects/{project.pk}/")
    page.locator("#overview-activity #activity-live").wait_for(state="attached", timeout=10_000)
    page.wait_for_timeout(500)  # the socket opens
    job = finished_image_job(project=project, user=bob, colours=("red",))
    live = page.locator(f'#activity-live [data-record="studio.image:{job.pk}"]')
    live.wait_for(timeout=10_000)
    assert "bob" in (live.text_content() or "") and "1 image" in (live.text_content() or "")
    thumb = live.locator("img.thumb")
    assert thumb.evaluate("img => img.decode().then(() => img.naturalWidth)") > 0
