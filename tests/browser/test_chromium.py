"""End to end in Chromium: land from an ad, buy, and both halves of the order agree.

The example project's storefront runs on pytest-django's live server, sending (inline,
as the demo does) to the fake Conversions API on loopback. Chromium is Debian's
(/usr/bin/chromium): Playwright downloads nothing. There is no internet either, so the
pixel's SDK (https://bzrcdn.openai.com/sdk/oaiq.min.js) is answered by a stub that
records every ``oaiq(...)`` call the page makes, for the test to read back.

Skipped where Chromium is missing, except in CI (``CI=true``), where a missing browser
fails the run: the test is what shows the feature works.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from django_openai_capi.pixel import SDK_URL
from django_openai_capi.testing import EventKey, FakeConversionsAPI
from example_project.shop.models import Order

pytestmark = [pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
OPPREF = "op_2f9c-Example_click.id"

# Stands in for the SDK: takes over the queue the official snippet made, and records
# every call. With PIXEL_SETS_COOKIE it also does what the real pixel does on a landing
# page: keep the URL's oppref in the first-party __oppref cookie.
STUB_SDK = """
(function () {
  var queued = (window.oaiq && window.oaiq.q) || [];
  var calls = (window.__oaiqCalls = []);
  window.oaiq = function () { calls.push(Array.prototype.slice.call(arguments)); };
  for (var i = 0; i < queued.length; i++) window.oaiq.apply(null, queued[i]);
  var click = new URLSearchParams(location.search).get("oppref");
  if (PIXEL_SETS_COOKIE && click) {
    document.cookie = "__oppref=" + click + "; path=/; max-age=2592000; samesite=lax";
  }
})();
"""


@dataclass
class Visit:
    """What the browser saw: the order placed, the pixel's calls, the cookies."""

    order_number: str
    pixel_calls: list[list[Any]]
    cookies: dict[str, Any]


@pytest.fixture
def chromium() -> Path:
    missing = None
    if not CHROMIUM.exists():
        missing = f"Chromium at {CHROMIUM} (apt-get install chromium)"
    elif importlib.util.find_spec("playwright") is None:
        missing = "Playwright (the test dependency group)"
    if missing is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the browser test, and it needs {missing}")
        pytest.skip(f"needs {missing}")
    return CHROMIUM


def buy_after_an_ad_click(chromium: Path, site: str, sdk: str) -> Visit:
    """Land on *site* with ?oppref=, go to the shop, buy a teapot, read the confirmation.

    Playwright's sync API runs an event loop in this thread, in which Django refuses
    database queries: the browser is closed before the test looks at the database.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium))
        try:
            context = browser.new_context()
            page = context.new_page()
            page.route(
                SDK_URL,
                lambda route: route.fulfill(
                    status=200, content_type="application/javascript", body=sdk
                ),
            )
            page.goto(f"{site}/?oppref={OPPREF}")
            page.get_by_role("link", name="place an order").click()
            page.get_by_label("Email").fill("ada@example.com")
            page.get_by_label("Product").select_option("SKU-POT")
            page.get_by_label("Quantity").fill("1")
            page.get_by_role("button", name="Place order").click()
            page.wait_for_url("**/checkout/confirmation/")
            return Visit(
                order_number=page.locator("#order-number").inner_text(),
                pixel_calls=page.evaluate("window.__oaiqCalls"),
                cookies={cookie["name"]: cookie for cookie in context.cookies()},
            )
        finally:
            browser.close()


@pytest.fixture
def fake_api(settings: Any) -> Iterator[FakeConversionsAPI]:
    with FakeConversionsAPI(api_key="test-key", pixels=["test-pixel"]) as fake:
        settings.OPENAI_CAPI_ENDPOINT = fake.url
        # As in the example project: sent right after the checkout's commit.
        settings.OPENAI_CAPI_DISPATCH = "inline"
        yield fake


@pytest.mark.parametrize(
    "pixel_sets_cookie",
    [
        pytest.param(False, id="the middleware keeps the click id"),
        pytest.param(True, id="the pixel keeps it too"),
    ],
)
def test_an_order_after_an_ad_click_is_counted_once_with_its_click_id(
    chromium: Path,
    live_server: Any,
    fake_api: FakeConversionsAPI,
    pixel_sets_cookie: bool,
) -> None:
    sdk = STUB_SDK.replace("PIXEL_SETS_COOKIE", str(pixel_sets_cookie).lower())
    visit = buy_after_an_ad_click(chromium, live_server.url, sdk)

    # The landing page's click id, kept in the first-party cookie the pixel reads.
    cookie = visit.cookies["__oppref"]
    assert (cookie["value"], cookie["httpOnly"], cookie["sameSite"]) == (
        OPPREF,
        False,
        "Lax",
    )

    # The server's event, delivered right after the checkout's commit.
    order = Order.objects.get(number=visit.order_number)
    key = EventKey("test-pixel", "order_created", f"shop.order:{order.pk}")
    assert list(fake_api.accepted) == [key]
    server = fake_api.accepted[key]
    assert server["oppref"] == OPPREF
    assert server["data"]["amount"] == 4500

    # The browser's: the same pixel, event name and event id, so the API keeps one.
    assert ["init", {"pixelId": "test-pixel"}] in visit.pixel_calls
    [measure] = [call for call in visit.pixel_calls if call[0] == "measure"]
    assert measure == [
        "measure",
        "order_created",
        server["data"],
        {"event_id": server["id"]},
    ]
