"""The status page tells the story: a banner per problem, charts that add up."""

from __future__ import annotations

import html as html_module
import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_openai_capi.admin.chart import Series, axis_top, hourly_chart
from django_openai_capi.delivery import send_pending
from django_openai_capi.health import STALE_ADVICE
from django_openai_capi.models import (
    ConversionEvent,
    DeliveryBatch,
    ErrorKind,
    PixelPause,
)
from django_openai_capi.testing import FakeConversionsAPI
from tests.admin.conftest import STATUS_PAGE
from tests.outbox import ENDPOINT, MakeEvents

pytestmark = pytest.mark.django_db

Status = ConversionEvent.Status
Outcome = DeliveryBatch.Outcome
KEY = "sk-conversions-secret-5678"


def status_page(client: Any) -> str:
    page = client.get(STATUS_PAGE)
    assert page.status_code == 200
    return str(page.content.decode())


def text(fragment: str) -> str:
    """*fragment* as a reader sees it: tags removed, entities read, spaces collapsed."""
    return " ".join(html_module.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def banners(html: str) -> list[str]:
    """The text of each red banner."""
    if 'class="messagelist capi-banners"' not in html:
        return []
    listed = html.split('class="messagelist capi-banners"', 1)[1].split("</ul>", 1)[0]
    items = re.findall(r'<li class="error capi-banner".*?</li>', listed, re.S)
    return [text(item) for item in items]


def notes(html: str) -> list[str]:
    found = re.findall(r'<div class="capi-note".*?</div>', html, re.S)
    return [text(item) for item in found]


def test_a_revoked_key_is_a_banner_with_the_reason_the_status_the_request_id_and_the_fix(
    admin_client: Any, make_events: MakeEvents, settings: Any
) -> None:
    with FakeConversionsAPI(api_key=KEY, pixels=["test-pixel"]) as fake:
        settings.OPENAI_CAPI_ENDPOINT = fake.url
        settings.OPENAI_CAPI_API_KEY = KEY
        make_events(3)
        fake.revoke_key(KEY)
        send_pending()
    pause = PixelPause.objects.get(pixel_id="test-pixel")

    html = status_page(admin_client)

    (banner,) = banners(html)
    assert pause.reason == ErrorKind.AUTH and pause.request_id
    assert "Delivery to pixel test-pixel is paused: auth: key or pixel refused" in (
        banner
    )
    assert "HTTP status 401" in banner
    assert f"Request ID {pause.request_id}" in banner
    assert "What to do: Check OPENAI_CAPI_API_KEY" in banner
    assert "it may have been revoked: create a new key and deploy it." in banner
    assert f"Paused since {timezone.localtime(pause.since):%Y-%m-%d %H:%M}" in banner
    assert f"Paused until {timezone.localtime(pause.paused_until):%Y-%m-%d %H:%M}" in (
        banner
    )
    assert KEY not in html


def test_a_request_level_fault_is_a_banner_with_the_fix(
    admin_client: Any, make_events: MakeEvents, settings: Any
) -> None:
    with FakeConversionsAPI(api_key="test-key", pixels=["test-pixel"]) as fake:
        settings.OPENAI_CAPI_ENDPOINT = fake.url
        make_events(3)
        fake.outage("missing_pid")
        send_pending()
    pause = PixelPause.objects.get(pixel_id="test-pixel")

    (banner,) = banners(status_page(admin_client))

    assert pause.reason == ErrorKind.REQUEST
    assert "is paused: request refused, not its events" in banner
    assert "HTTP status 400" in banner
    assert f"Request ID {pause.request_id}" in banner
    assert "without its pid query parameter" in banner


def test_a_stopped_worker_is_a_banner_asking_whether_one_runs(
    admin_client: Any, make_events: MakeEvents
) -> None:
    make_events(4, next_attempt_at=timezone.now() - timedelta(minutes=47, seconds=5))
    make_events(1, prefix="later", next_attempt_at=timezone.now() + timedelta(hours=1))

    (banner,) = banners(status_page(admin_client))

    assert banner.startswith(
        "Events of pixel test-pixel have been due for 47 minutes: is a worker running?"
    )
    assert "5 events pending" in banner
    assert "What to do: " + " ".join(STALE_ADVICE.split()) in banner


def test_events_due_for_less_than_the_threshold_are_no_banner(
    admin_client: Any, make_events: MakeEvents, settings: Any
) -> None:
    settings.OPENAI_CAPI_STALE_AFTER = 3600
    make_events(4, next_attempt_at=timezone.now() - timedelta(minutes=47))

    html = status_page(admin_client)

    assert banners(html) == [] and notes(html) == []
    assert 'class="messagelist capi-banners"' not in html


def test_a_pixel_without_a_key_is_a_banner(
    admin_client: Any, make_events: MakeEvents, settings: Any
) -> None:
    settings.OPENAI_CAPI_API_KEY = ""
    make_events(2)

    (banner,) = banners(status_page(admin_client))

    assert banner.startswith(
        "Pixel test-pixel has events waiting that cannot be sent: no usable Conversions API key"
    )
    assert "What to do: " in banner


def test_failed_events_are_a_note_not_a_banner(
    admin_client: Any, make_events: MakeEvents
) -> None:
    make_events(2, status=Status.FAILED, last_error_kind=ErrorKind.REJECTED)
    make_events(1, prefix="old", status=Status.EXPIRED)

    html = status_page(admin_client)

    assert banners(html) == []
    (note,) = notes(html)
    assert note.startswith(
        "Pixel test-pixel: 2 failed and 1 expired in the last 24 hours"
    )
    assert "resend them from there. The failed events" in note
    assert 'href="/admin/django_openai_capi/conversionevent/?status__exact=failed"' in (
        html
    )


def test_every_banner_shows_before_the_notes_and_each_pixel_has_its_own(
    admin_client: Any, make_events: MakeEvents
) -> None:
    long_ago = timezone.now() - timedelta(hours=2)
    make_events(1, pixel_id="pixel-a", next_attempt_at=long_ago)
    make_events(1, pixel_id="pixel-b", prefix="f", status=Status.FAILED)
    make_events(1, pixel_id="pixel-c", next_attempt_at=long_ago)
    pause(pixel_id="pixel-c")

    html = status_page(admin_client)

    shown = [
        (pixel, problem)
        for pixel, problem in re.findall(
            r'data-pixel="([^"]+)" data-problem="([^"]+)"', html
        )
    ]
    # pixel-c's due events wait for its pause, not for a worker: it is not stale.
    assert shown == [
        ("pixel-a", "stale"),
        ("pixel-c", "paused"),
        ("pixel-b", "failed"),
    ]


def pause(**fields: Any) -> PixelPause:
    now = timezone.now()
    values: dict[str, Any] = {
        "pixel_id": "test-pixel",
        "paused_until": now + timedelta(minutes=5),
        "since": now - timedelta(hours=3),
        "failures": 6,
        "reason": ErrorKind.AUTH,
        "http_status": 401,
        "error": "HTTP 401: Unauthorized",
        "request_id": "req_pause",
        "advice": "Regenerate the key.",
        "needs_attention": True,
    }
    return PixelPause.objects.create(**{**values, **fields})


def test_the_apis_error_is_text_and_a_key_in_it_is_redacted(
    admin_client: Any, make_events: MakeEvents, settings: Any, api: Any
) -> None:
    settings.OPENAI_CAPI_ENDPOINT = ENDPOINT
    settings.OPENAI_CAPI_API_KEY = KEY
    make_events(1)
    hostile = f'<img src=x onerror="alert(1)"> Incorrect API key provided: {KEY}'
    api.post(
        ENDPOINT,
        status=401,
        json={"error": {"message": hostile, "type": "invalid_request_error"}},
        headers={"x-request-id": "req_<b>hostile</b>"},
    )
    send_pending()

    html = status_page(admin_client)

    (banner,) = banners(html)
    assert KEY not in PixelPause.objects.get().error
    assert KEY not in html
    assert "Incorrect API key provided: [redacted]" in banner
    assert "<img src=x" not in html and "<b>hostile" not in html
    assert "&lt;img src=x onerror=" in html
    assert "req_&lt;b&gt;hostile&lt;/b&gt;" in html


def test_a_key_configured_after_the_pause_was_stored_is_redacted_on_the_page(
    admin_client: Any, settings: Any, make_events: MakeEvents
) -> None:
    make_events(1, next_attempt_at=timezone.now() + timedelta(minutes=5))
    pause(error=f"HTTP 401: key {KEY} refused", advice=f"Replace {KEY}.")
    settings.OPENAI_CAPI_API_KEY = KEY

    html = status_page(admin_client)

    assert KEY not in html
    assert "HTTP 401: key [redacted] refused" in html
    assert "Replace [redacted]." in html
    assert re.search(r"\(the next attempt in [45]\xa0minutes\)", html)


def batch(hours_ago: float, size: int, outcome: str, **fields: Any) -> DeliveryBatch:
    return DeliveryBatch.objects.create(
        claim_id=uuid.uuid4(),
        pixel_id="test-pixel",
        size=size,
        outcome=outcome,
        created_at=timezone.now() - timedelta(hours=hours_ago),
        **fields,
    )


def figure(html: str, chart_id: str) -> str:
    return html.split(f'<figure class="capi-figure" id="{chart_id}">', 1)[1].split(
        "</figure>", 1
    )[0]


def charted(figure_html: str) -> dict[str, int]:
    """Each series' sum of its bars' values, as drawn."""
    drawn: dict[str, int] = {}
    for key, value in re.findall(
        r'<rect class="capi-s-([a-z_]+)"[^>]* data-value="(\d+)"', figure_html
    ):
        drawn[key] = drawn.get(key, 0) + int(value)
    return drawn


def legend(figure_html: str) -> dict[str, tuple[str, int]]:
    """Each legend entry: its label and the total it states."""
    return {
        key: (label.strip(), int(total))
        for key, label, total in re.findall(
            r'<li data-series="([a-z_]+)">.*?<span class="capi-label">([^<]*): '
            + r'<span class="capi-total">(\d+)</span>',
            figure_html,
            re.S,
        )
    }


def test_the_charts_have_captions_axes_legends_and_totals_that_add_up(
    admin_client: Any, make_events: MakeEvents
) -> None:
    batch(1, 1000, Outcome.ACCEPTED)
    batch(1, 500, Outcome.ACCEPTED, validate_only=True)
    batch(30, 200, Outcome.ACCEPTED)
    batch(2, 10, Outcome.RETRY)
    batch(2, 10, Outcome.RETRY)
    batch(40, 10, Outcome.AUTH_ERROR)
    batch(24 * 5, 77, Outcome.ACCEPTED)  # older than the charts
    make_events(2, status=Status.FAILED)
    make_events(1, prefix="x", status=Status.EXPIRED)

    html = status_page(admin_client)

    events = figure(html, "capi-chart-events")
    assert (
        "<figcaption>Events sent vs failed per hour, last 3 days (UTC)</figcaption>"
        in events
    )
    assert legend(events) == {
        "delivered": ("sent", 1200),
        "failed": ("failed or expired", 3),
    }
    assert charted(events) == {"delivered": 1200, "failed": 3}
    # y ticks: 0, half and the top, a round number above the busiest hour.
    assert re.findall(r'text-anchor="end">([\d,]+)</text>', events) == [
        "0",
        "500",
        "1,000",
    ]
    assert len(re.findall(r'text-anchor="middle">\w{3} \d\d (?:00|12):00<', events))
    assert "UTC: 1,000 sent</title>" in events

    requests = figure(html, "capi-chart-requests")
    assert (
        "<figcaption>Requests by outcome per hour, last 3 days (UTC)</figcaption>"
        in requests
    )
    # Only the outcomes that occur, in the order of DeliveryBatch.Outcome.
    assert legend(requests) == {
        "accepted": ("accepted", 3),
        "auth_error": ("auth error", 1),
        "retry": ("retry later", 2),
    }
    assert list(legend(requests)) == ["accepted", "auth_error", "retry"]
    assert charted(requests) == {"accepted": 3, "auth_error": 1, "retry": 2}
    assert re.findall(r'text-anchor="end">([\d,]+)</text>', requests) == [
        "0",
        "1",
        "2",
    ]
    # Its stacked bars: the busiest hour's stack reaches the top tick.
    status = admin_client.get(STATUS_PAGE).context["status"]
    assert max(sum(hour.requests.values()) for hour in status.hours) == 2


def test_the_charts_of_an_empty_outbox_say_there_is_nothing(
    admin_client: Any,
) -> None:
    html = status_page(admin_client)

    assert charted(figure(html, "capi-chart-events")) == {}
    assert legend(figure(html, "capi-chart-events")) == {
        "delivered": ("sent", 0),
        "failed": ("failed or expired", 0),
    }
    assert "No requests in these days." in figure(html, "capi-chart-requests")


def test_a_chart_stacks_or_sets_side_by_side_and_scales_to_a_round_top() -> None:
    hours = [timezone.now().replace(minute=0) + timedelta(hours=i) for i in range(2)]
    series = [Series("a", "a", (3, 0)), Series("b", "b<i>", (4, 1))]

    stacked = hourly_chart(hours, series, title="<t>", stacked=True)
    beside = hourly_chart(hours, series, title="<t>", stacked=False)

    # Stacked, the first hour is 7 high (top 8); side by side, 4 (top 4).
    assert re.findall(r'text-anchor="end">(\d+)<', stacked) == ["0", "4", "8"]
    assert re.findall(r'text-anchor="end">(\d+)<', beside) == ["0", "2", "4"]
    assert "<t>" not in stacked and "&lt;t&gt;" in stacked
    assert "b&lt;i&gt;</title>" in stacked
    assert stacked.count("<rect ") == 3  # no bar for a zero
    with pytest.raises(ValueError, match="one value per hour"):
        hourly_chart(hours, [Series("a", "a", (1,))], title="t", stacked=True)


def test_one_among_ten_thousand_is_a_visible_bar_and_an_empty_chart_is_flat() -> None:
    hours = [timezone.now().replace(minute=0) + timedelta(hours=i) for i in range(3)]

    svg = hourly_chart(
        hours, [Series("a", "a", (10_000, 1, 0))], title="t", stacked=False
    )
    empty = hourly_chart(hours, [Series("a", "a", (0, 0, 0))], title="t", stacked=True)

    heights = re.findall(r'<rect [^>]* height="([\d.]+)"', svg)
    assert [float(height) for height in heights] == [166.0, 1.0]
    assert "<rect" not in empty
    assert re.findall(r'text-anchor="end">(\d+)<', empty) == ["0", "1", "2"]


@pytest.mark.parametrize(
    ("largest", "top"),
    [(0, 2), (1, 2), (3, 4), (7, 8), (9, 10), (11, 20), (25, 40), (1234, 2000)],
)
def test_the_axis_top_is_even_and_round(largest: int, top: int) -> None:
    assert axis_top(largest) == top


def queries_of_the_page(client: Any) -> int:
    with CaptureQueriesContext(connection) as captured:
        status_page(client)
    return len(captured)


def test_the_pages_queries_do_not_grow_with_events_and_grow_by_four_per_pixel(
    admin_client: Any, make_events: MakeEvents
) -> None:
    make_events(1)
    queries_of_the_page(admin_client)  # the session and the user, once read
    one_pixel = queries_of_the_page(admin_client)
    make_events(50, prefix="due", next_attempt_at=timezone.now() - timedelta(hours=2))
    make_events(20, prefix="f", status=Status.FAILED)
    for hours_ago in range(40):
        batch(hours_ago, 5, Outcome.ACCEPTED)
        batch(hours_ago, 5, Outcome.RETRY)
    pause()
    busy_pixel = queries_of_the_page(admin_client)
    for pixel in ("pixel-b", "pixel-c", "pixel-d"):
        make_events(3, pixel_id=pixel, prefix=pixel)
    four_pixels = queries_of_the_page(admin_client)

    assert busy_pixel == one_pixel
    # Each pixel: one probe to find it among the pending, its pending count, its
    # oldest due event and its last accepted request.
    assert four_pixels == one_pixel + 3 * 4
    # 37 today: the session and the user (2), delivery_status() (28: six counts, the
    # oldest pending, three hourly, the last error of 11 kinds and of 7 outcomes) and
    # assess() (7: failures, pauses, two probes for pending pixels, three for its one).
    assert one_pixel <= 37
