"""The admin in Chromium: log in, find the failed events, resend some, read the status.

Driven as tests/browser/test_chromium.py drives the storefront (Debian's Chromium,
nothing downloaded; skipped without it except in CI, where that fails the run).
Playwright's sync API runs an event loop in this thread, in which Django refuses
database queries: the rows are made before the browser starts and read after it closes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from django_openai_capi.models import ConversionEvent, ErrorKind
from tests.browser.test_chromium import chromium  # noqa: F401 - the shared fixture
from tests.outbox import MakeEvents

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

Status = ConversionEvent.Status


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
            page = browser.new_page(viewport={"width": 1400, "height": 900})
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
            charts = page.locator("svg.capi-chart[role=img]").count()
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
