"""The Usage page in a real browser: the server-drawn chart shows a finished job's real numbers."""
from __future__ import annotations

import pytest

from tests.factories import PASSWORD
from tests.helpers import finished_image_job
from webapp.usage.models import UsageRecord

pytestmark = [pytest.mark.browser, pytest.mark.stack, pytest.mark.django_db(transaction=True)]


def test_the_usage_chart_draws_todays_images_as_a_bar(asgi_server, new_page, team, project, alice, bob):
    finished_image_job(project=project, user=bob, colours=("red", "green", "blue"))  # the lifecycle records it
    assert UsageRecord.objects.get().images == 3
    page = new_page()
    page.goto(f"{asgi_server}/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    page.goto(f"{asgi_server}/teams/{team.pk}/usage/?metric=images")

    chart = page.locator("svg#usage-chart")
    assert chart.get_attribute("role") == "img" and "Images per day" in (page.locator("#usage-chart-title").text_content() or "")
    bars = chart.locator("rect.bar")
    assert bars.count() == 30
    today = bars.last
    assert today.get_attribute("data-value") == "3.0"
    drawn = today.bounding_box()
    empty = bars.first.bounding_box()
    assert drawn is not None and drawn["height"] > 50 and (empty is None or empty["height"] == 0)
    assert page.locator('[data-total="images"]').text_content() == "3"
    page.locator("figcaption summary").click()
    assert page.locator("#usage-chart-table tbody tr").last.locator("td").last.text_content() == "3.0"

