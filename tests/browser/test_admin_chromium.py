"""The admin in Chromium: log in, find the failed events, resend some, read the status.

And the status page and the event list at 1280 x 720, in the light and the dark theme:
the banners say what is wrong, the charts are captioned and readable, nothing needs
scrolling sideways.

Driven as tests/browser/test_chromium.py drives the storefront (Debian's Chromium,
nothing downloaded; skipped without it except in CI, where that fails the run).
Playwright's sync API runs an event loop in this thread, in which Django refuses
database queries: the rows are made before the browser starts and read after it closes.

The test settings do not install django.contrib.staticfiles, so the live server does
not serve the admin's CSS: the browser is given it from Django's own files instead
(:func:`with_admin_css`), or the layout measured would be that of an unstyled page.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import django.contrib.admin
import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from django_openai_capi.models import (
    ConversionEvent,
    DeliveryBatch,
    ErrorKind,
    PixelPause,
)
from tests.browser.test_chromium import chromium  # noqa: F401 - the shared fixture
from tests.outbox import MakeEvents

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

Status = ConversionEvent.Status


ADMIN_STATIC = Path(django.contrib.admin.__file__).parent / "static"


def with_admin_css(browser: Any, site: str, **options: Any) -> Any:
    """A page whose requests for static files are answered from the admin's files."""
    context = browser.new_context(**options)
    prefix = f"{site}/{settings.STATIC_URL.strip('/')}/"

    def serve(route: Any) -> None:
        name = route.request.url.removeprefix(prefix).split("?")[0]
        found = (ADMIN_STATIC / name).resolve()
        if ADMIN_STATIC in found.parents and found.is_file():
            route.fulfill(path=str(found))
        else:
            route.fulfill(status=404)

    context.route(f"{prefix}**", serve)
    return context.new_page()


@dataclass
class Session:
    """What the browser saw."""

    failed_listed: list[str]
    resent: list[str]
    message: str
    pending_listed: list[str]
    status_counts: dict[str, str]
    charts: int


def resend_two_failed_events(browser_path: Path, site: str, shots: Path) -> Session:
    from playwright.sync_api import sync_playwright

    def event_ids(page: Any) -> list[str]:
        return [
            text.strip() for text in page.locator("td.field-event_id").all_inner_texts()
        ]

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(browser_path))
        try:
            page = with_admin_css(
                browser, site, viewport={"width": 1400, "height": 900}
            )
            page.goto(f"{site}/admin/")
            page.get_by_label("Username").fill("lead")
            page.get_by_label("Password").fill("s3cret-pass")
            page.locator("input[type=submit]").click()
            page.get_by_role("link", name="Conversion events").first.click()
            page.locator("#changelist-filter").get_by_role(
                "link", name="failed", exact=True
            ).click()
            page.wait_for_url("**status__exact=failed**")
            failed = event_ids(page)
            page.screenshot(path=str(shots / "admin-failed.png"), full_page=True)
            rows = page.locator("#result_list tbody tr")
            resent = []
            for index in (0, 1):
                row = rows.nth(index)
                row.locator("input[name=_selected_action]").check()
                resent.append(row.locator("td.field-event_id").inner_text().strip())
            page.locator("select[name=action]").select_option("resend")
            page.locator("button[name=index]").click()
            message = page.locator("ul.messagelist li").first.inner_text()
            page.locator("#changelist-filter").get_by_role(
                "link", name="pending", exact=True
            ).click()
            page.wait_for_url("**status__exact=pending**")
            pending = event_ids(page)
            page.goto(f"{site}/admin/")
            page.get_by_role("link", name="Delivery status").first.click()
            page.wait_for_selector("svg.capi-chart")
            page.screenshot(path=str(shots / "admin-status.png"), full_page=True)
            counts = {
                status: page.locator(f"#capi-count-{status} .capi-number").inner_text()
                for status in ("pending", "failed", "sent")
            }
            charts = page.locator("figure svg.capi-chart").count()
            return Session(failed, resent, message, pending, counts, charts)
        finally:
            browser.close()


def test_failed_events_are_found_resent_and_then_pending(
    chromium: Path,  # noqa: F811 - the imported fixture
    live_server: Any,
    make_events: MakeEvents,
    tmp_path: Path,
) -> None:
    User.objects.create_superuser("lead", "lead@example.com", "s3cret-pass")
    make_events(
        3,
        prefix="failed",
        status=Status.FAILED,
        attempts=20,
        last_error="Gave up after 20 attempts. Last: HTTP 503",
        last_error_kind=ErrorKind.SERVER,
    )
    make_events(4, prefix="sent", status=Status.SENT)
    shots = Path(os.environ.get("CAPI_SCREENSHOTS", tmp_path))

    seen = resend_two_failed_events(chromium, live_server.url, shots)

    assert sorted(seen.failed_listed) == ["failed-0", "failed-1", "failed-2"]
    assert seen.message == (
        "2 events are pending again: delivery sends them with the same ids."
    )
    assert sorted(seen.pending_listed) == sorted(seen.resent)
    assert seen.status_counts == {"pending": "2", "failed": "1", "sent": "4"}
    assert seen.charts == 2
    assert dict(
        ConversionEvent.objects.filter(event_id__in=seen.resent).values_list(
            "event_id", "attempts"
        )
    ) == dict.fromkeys(seen.resent, 0)


WIDTH, HEIGHT = 1280, 720
ADVICE = "Create a new Conversions API key in Ads Manager and deploy it."


@dataclass
class Layout:
    """What the browser saw at 1280 x 720."""

    banners: list[str]
    captions: list[str]
    legends: list[str]
    status_scroll_width: int
    #: The right edge of the first row's status, HTTP status and error cells, and of
    #: the list's scrolling box that would hide what is past it.
    cells_right: dict[str, float]
    list_box_right: float
    list_scroll_width: int
    #: The event's page: its error's right edge, and how wide the page is.
    error_right: float
    event_scroll_width: int
    #: Computed colors in the dark theme.
    dark: dict[str, str]


def log_in(page: Any, site: str) -> None:
    page.goto(f"{site}/admin/login/")
    page.get_by_label("Username").fill("lead")
    page.get_by_label("Password").fill("s3cret-pass")
    page.locator("input[type=submit]").click()
    page.wait_for_url(f"{site}/admin/")


def read_the_pages_at_1280(browser_path: Path, site: str, shots: Path) -> Layout:
    from playwright.sync_api import sync_playwright

    status_url = f"{site}/admin/django_openai_capi/deliverystatus/"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(browser_path))
        try:
            page = with_admin_css(
                browser, site, viewport={"width": WIDTH, "height": HEIGHT}
            )
            log_in(page, site)
            page.goto(status_url)
            page.screenshot(path=str(shots / "status-1280.png"), full_page=True)
            banners = page.locator("ul.capi-banners li.capi-banner").all_inner_texts()
            captions = page.locator("figure.capi-figure figcaption").all_inner_texts()
            legends = page.locator("figure.capi-figure .capi-legend").all_inner_texts()
            status_width = page.evaluate("document.documentElement.scrollWidth")

            page.goto(f"{site}/admin/django_openai_capi/conversionevent/")
            page.screenshot(path=str(shots / "events-1280.png"))
            row = page.locator("#result_list tbody tr").first
            cells = {}
            for field in ("status", "http_status", "error_excerpt"):
                box = row.locator(f"td.field-{field}").bounding_box()
                assert box is not None
                cells[field] = box["x"] + box["width"]
            results = page.locator("#changelist .results").bounding_box()
            assert results is not None
            list_width = page.evaluate("document.documentElement.scrollWidth")

            row.locator("th.field-id a, td.field-id a").first.click()
            page.wait_for_selector("pre.capi-error")
            page.screenshot(path=str(shots / "event-1280.png"), full_page=True)
            error = page.locator("pre.capi-error").bounding_box()
            assert error is not None
            event_width = page.evaluate("document.documentElement.scrollWidth")

            page.emulate_media(color_scheme="dark")
            page.goto(status_url)
            page.screenshot(path=str(shots / "status-1280-dark.png"), full_page=True)
            dark = page.evaluate(
                """() => {
                  const style = (selector, property) => getComputedStyle(
                    document.querySelector(selector))[property];
                  return {
                    background: style("body", "backgroundColor"),
                    axis_text: style("#capi-chart-events svg text", "fill"),
                    caption: style("#capi-chart-events figcaption", "color"),
                    legend: style("#capi-chart-events .capi-legend", "color"),
                    sent_bar: style("#capi-chart-events rect.capi-s-delivered", "fill"),
                    failed_bar: style("#capi-chart-events rect.capi-s-failed", "fill"),
                    banner: style("li.capi-banner", "color"),
                    banner_background: style("li.capi-banner", "backgroundColor"),
                  };
                }"""
            )
            return Layout(
                banners,
                captions,
                legends,
                status_width,
                cells,
                results["x"] + results["width"],
                list_width,
                error["x"] + error["width"],
                event_width,
                dark,
            )
        finally:
            browser.close()


def test_the_status_page_and_the_event_list_read_at_1280_by_720_light_and_dark(
    chromium: Path,  # noqa: F811 - the imported fixture
    live_server: Any,
    make_events: MakeEvents,
    tmp_path: Path,
) -> None:
    User.objects.create_superuser("lead", "lead@example.com", "s3cret-pass")
    now = timezone.now()
    PixelPause.objects.create(
        pixel_id="test-pixel",
        paused_until=now + timedelta(minutes=10),
        since=now - timedelta(hours=2),
        failures=5,
        reason=ErrorKind.AUTH,
        http_status=401,
        error="HTTP 401: Incorrect API key provided.",
        request_id="req_revoked_0042",
        advice=ADVICE,
        needs_attention=True,
    )
    # Held back by the pause: what makes it a problem.
    make_events(1, prefix="held", next_attempt_at=now + timedelta(minutes=10))
    make_events(3, pixel_id="pixel-b", next_attempt_at=now - timedelta(minutes=40))
    make_events(
        2,
        prefix="failed-order-2f9c41d7e8a3b6c05d1e",
        status=Status.FAILED,
        last_http_status=400,
        last_error_kind=ErrorKind.REJECTED,
        # Words, and a token too long for any line: both must wrap.
        last_error="events[0].data.user: "
        + "a long error from the API " * 40
        + "token_"
        + "x" * 300,
    )
    for hours_ago in range(0, 72, 5):
        for outcome in (DeliveryBatch.Outcome.ACCEPTED, DeliveryBatch.Outcome.RETRY):
            DeliveryBatch.objects.create(
                claim_id=uuid.uuid4(),
                pixel_id="test-pixel",
                size=40,
                outcome=outcome,
                created_at=now - timedelta(hours=hours_ago),
            )
    shots = Path(os.environ.get("CAPI_SCREENSHOTS", tmp_path))

    seen = read_the_pages_at_1280(chromium, live_server.url, shots)

    # In the order of their pixels.
    stale, paused = seen.banners
    assert "Delivery to pixel test-pixel is paused: auth: key or pixel refused" in (
        paused
    )
    assert "req_revoked_0042" in paused and "401" in paused
    assert ADVICE in paused
    assert (
        "Events of pixel pixel-b have been due for 40\xa0minutes: is a worker running?"
        in stale
    )
    assert "Check that a delivery worker is running" in stale
    assert seen.captions == [
        "Events sent vs failed per hour, last 3 days (UTC)",
        "Requests by outcome per hour, last 3 days (UTC)",
    ]
    assert "sent: 600" in seen.legends[0] and "failed or expired: 2" in seen.legends[0]
    assert "accepted: 15" in seen.legends[1] and "retry later: 15" in seen.legends[1]
    assert seen.status_scroll_width <= WIDTH
    assert seen.list_scroll_width <= WIDTH
    assert seen.error_right <= WIDTH and seen.event_scroll_width <= WIDTH
    for field, right in seen.cells_right.items():
        assert right <= WIDTH, field
        assert right <= seen.list_box_right, field
    dark = seen.dark
    assert dark["background"] == "rgb(18, 18, 18)"  # the admin's dark theme
    for name in ("axis_text", "caption", "legend", "sent_bar", "failed_bar"):
        assert dark[name] not in (dark["background"], "none", "rgba(0, 0, 0, 0)"), name
    assert dark["banner"] != dark["banner_background"]
