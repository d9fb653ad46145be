"""An event's read-only page, and the status page."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_openai_capi.delivery import send_pending
from django_openai_capi.maintenance import status as summary
from django_openai_capi.models import (
    ACCEPTANCE_WINDOW,
    ConversionEvent,
    DeliveryBatch,
    ErrorKind,
    EventPayload,
    PixelPause,
)
from django_openai_capi.testing import FakeConversionsAPI
from tests.admin.conftest import STATUS_PAGE, StaffClient
from tests.outbox import ENDPOINT, MakeEvents, error_envelope, statuses

pytestmark = pytest.mark.django_db

Status = ConversionEvent.Status
KEY = "sk-conversions-secret-1234"


def event_page(client: Any, event: ConversionEvent) -> str:
    page = client.get(f"/admin/django_openai_capi/conversionevent/{event.pk}/change/")
    assert page.status_code == 200
    return str(page.content.decode())


def test_an_events_page_shows_its_payload_error_request_id_and_requests(
    admin_client: Any, make_events: MakeEvents, settings: Any
) -> None:
    settings.OPENAI_CAPI_API_KEY = KEY
    claim = uuid.uuid4()
    (event,) = make_events(
        1,
        status=Status.FAILED,
        claim_id=claim,
        last_http_status=400,
        last_error="events[0].data.type: not a valid type",
        last_error_kind=ErrorKind.REJECTED,
    )
    start = timezone.now()
    for offset, (outcome, status, request_id, error) in enumerate(
        [
            (DeliveryBatch.Outcome.REJECTED, 400, "req_first", f"echo {KEY}"),
            (DeliveryBatch.Outcome.REJECTED, 400, "req_last", "Invalid event"),
        ]
    ):
        DeliveryBatch.objects.create(
            claim_id=claim,
            pixel_id="test-pixel",
            size=2 - offset,
            outcome=outcome,
            http_status=status,
            duration_ms=120 + offset,
            request_id=request_id,
            error=error,
            created_at=start + timedelta(seconds=offset),
        )
    DeliveryBatch.objects.create(
        claim_id=uuid.uuid4(),
        pixel_id="test-pixel",
        size=9,
        outcome=DeliveryBatch.Outcome.ACCEPTED,
        request_id="req_other_claim",
    )

    html = event_page(admin_client, event)

    assert 'name="_save"' not in html
    assert '<pre class="capi-payload">{\n  &quot;data&quot;: {\n    &quot;type' in html
    assert "\n  &quot;id&quot;: &quot;lead-0&quot;,\n" in html
    assert "events[0].data.type: not a valid type" in html
    assert '<div class="readonly">req_last</div>' in html
    assert "req_first" in html and "121 ms" in html
    assert "req_other_claim" not in html
    assert KEY not in html
    assert "echo [redacted]" in html


def test_an_events_page_lists_the_requests_of_every_claim_that_carried_it(
    admin_client: Any, make_events: MakeEvents, api: Any
) -> None:
    (event,) = make_events(1)
    api.post(ENDPOINT, status=503, json={}, headers={"x-request-id": "req_outage"})
    api.post(ENDPOINT, json={}, headers={"x-request-id": "req_through"})
    send_pending()
    PixelPause.objects.all().delete()
    ConversionEvent.objects.filter(pk=event.pk).update(next_attempt_at=timezone.now())
    send_pending()
    event.refresh_from_db()

    html = event_page(admin_client, event)

    assert event.status == Status.SENT
    table = html[html.index('class="capi-batches"') :]
    assert table.index("req_outage") < table.index("req_through")
    assert '<div class="readonly">req_through</div>' in html


def test_a_refused_events_page_shows_the_request_that_refused_it_not_the_one_that_sent_the_other(
    admin_client: Any, make_events: MakeEvents, api: Any
) -> None:
    kept, refused = make_events(2)
    api.post(
        ENDPOINT,
        status=400,
        body=error_envelope(1),
        headers={"x-request-id": "req_refused"},
    )
    api.post(ENDPOINT, json={}, headers={"x-request-id": "req_accepted"})
    send_pending()

    refused_page = event_page(admin_client, refused)
    kept_page = event_page(admin_client, kept)

    assert statuses() == {"lead-0": Status.SENT, "lead-1": Status.FAILED}
    assert '<div class="readonly">req_refused</div>' in refused_page
    assert "req_accepted" not in refused_page
    assert '<div class="readonly">req_accepted</div>' in kept_page
    table = kept_page[kept_page.index('class="capi-batches"') :]
    assert table.index("req_refused") < table.index("req_accepted")


def test_an_events_page_lists_only_the_requests_of_an_isolation_that_carried_it(
    admin_client: Any, make_events: MakeEvents, api: Any
) -> None:
    events = make_events(3)
    # No index in the errors: the batch is split in halves until lead-1 stands alone.
    for request_id, status in [
        ("req_whole", 400),
        ("req_first_half", 200),
        ("req_second_half", 400),
        ("req_lead_1_alone", 400),
        ("req_lead_2_alone", 200),
    ]:
        api.post(
            ENDPOINT,
            status=status,
            body=error_envelope(None) if status == 400 else "{}",
            headers={"x-request-id": request_id},
        )
    send_pending()

    pages = {event.event_id: event_page(admin_client, event) for event in events}

    assert statuses()["lead-1"] == Status.FAILED
    shown = {
        event_id: [
            request_id
            for request_id in (
                "req_whole",
                "req_first_half",
                "req_second_half",
                "req_lead_1_alone",
                "req_lead_2_alone",
            )
            if request_id in html
        ]
        for event_id, html in pages.items()
    }
    assert shown == {
        "lead-0": ["req_whole", "req_first_half"],
        "lead-1": ["req_whole", "req_second_half", "req_lead_1_alone"],
        "lead-2": ["req_whole", "req_second_half", "req_lead_2_alone"],
    }
    assert '<div class="readonly">req_lead_1_alone</div>' in pages["lead-1"]


def test_an_event_expired_unsent_lists_no_request_of_its_claim(
    admin_client: Any, make_events: MakeEvents, api: Any
) -> None:
    make_events(1)
    (stale,) = make_events(
        1,
        prefix="stale",
        event_time=timezone.now() - ACCEPTANCE_WINDOW + timedelta(minutes=1),
    )
    api.post(ENDPOINT, json={}, headers={"x-request-id": "req_of_the_others"})
    send_pending()
    stale.refresh_from_db()

    html = event_page(admin_client, stale)

    assert stale.status == Status.EXPIRED
    assert stale.claim_ids or stale.claim_id
    assert "req_of_the_others" not in html


def test_an_events_page_reads_its_payload_with_the_event(
    admin_client: Any, make_events: MakeEvents
) -> None:
    (event,) = make_events(1)

    with CaptureQueriesContext(connection) as captured:
        event_page(admin_client, event)

    reads = [q["sql"] for q in captured if "eventpayload" in q["sql"]]
    assert len(reads) == 1
    assert reads[0].startswith('SELECT "django_openai_capi_conversionevent"."id"')


def test_a_payload_that_is_not_json_is_shown_as_stored(
    admin_client: Any, make_events: MakeEvents
) -> None:
    (event,) = make_events(1)
    EventPayload.objects.filter(pk=event.pk).update(json='{"id": <b>broken')

    html = event_page(admin_client, event)

    assert '<pre class="capi-payload">{&quot;id&quot;: &lt;b&gt;broken</pre>' in html


def test_an_unbuilt_event_without_requests_says_so(
    admin_client: Any, make_events: MakeEvents
) -> None:
    (event,) = make_events(1, payload=None)

    html = event_page(admin_client, event)

    assert "Not built yet" in html
    assert (
        html.count('<div class="readonly">—</div>') >= 3
    )  # error, request id, requests


def test_the_request_id_is_a_dash_when_no_request_of_the_claim_got_one(
    admin_client: Any, make_events: MakeEvents
) -> None:
    claim = uuid.uuid4()
    (event,) = make_events(1, claim_id=claim)
    DeliveryBatch.objects.create(
        claim_id=claim,
        pixel_id="test-pixel",
        size=1,
        outcome=DeliveryBatch.Outcome.NETWORK_ERROR,
        error="ConnectTimeout",
    )

    html = event_page(admin_client, event)

    assert "ConnectTimeout" in html
    assert '<div class="readonly">—</div>' in html


def test_the_list_cuts_a_long_error_and_the_page_shows_it_whole(
    admin_client: Any, make_events: MakeEvents
) -> None:
    long = "x" * 300
    (event,) = make_events(1, status=Status.FAILED, last_error=long)

    listing = admin_client.get("/admin/django_openai_capi/conversionevent/")

    assert (
        f'<span class="capi-excerpt" title="{long}">{"x" * 119}…</span>'.encode()
        in listing.content
    )
    assert long in event_page(admin_client, event)


def batch(hours_ago: float, size: int, outcome: str, **fields: Any) -> DeliveryBatch:
    return DeliveryBatch.objects.create(
        claim_id=uuid.uuid4(),
        pixel_id="test-pixel",
        size=size,
        outcome=outcome,
        created_at=timezone.now() - timedelta(hours=hours_ago),
        **fields,
    )


def test_the_status_page_counts_charts_and_shows_the_last_error_of_each_kind(
    admin_client: Any, make_events: MakeEvents, settings: Any
) -> None:
    settings.OPENAI_CAPI_API_KEY = KEY
    old = timezone.now() - timedelta(days=2, hours=3)
    make_events(2, prefix="old", event_time=old)
    make_events(3, prefix="sent", status=Status.SENT)
    make_events(
        1,
        prefix="<script>alert(1)</script>",
        status=Status.FAILED,
        last_error_kind=ErrorKind.REJECTED,
        last_error=f"refused, key {KEY}",
        last_http_status=400,
    )
    batch(1, 1000, DeliveryBatch.Outcome.ACCEPTED)
    batch(1, 500, DeliveryBatch.Outcome.ACCEPTED, validate_only=True)
    batch(2, 10, DeliveryBatch.Outcome.RETRY)
    batch(24 * 5, 77, DeliveryBatch.Outcome.ACCEPTED)  # outside the chart's days

    page = admin_client.get(STATUS_PAGE)

    assert page.status_code == 200
    html = page.content.decode()
    counts = {count.status: count.count for count in page.context["status"].counts}
    assert counts == {
        "pending": 2,
        "sending": 0,
        "sent": 3,
        "failed": 1,
        "expired": 0,
        "cancelled": 0,
    }
    assert "Oldest pending event: 2\xa0days, 3\xa0hours old" in html
    assert 'data-series="delivered">' in html
    assert '<span class="capi-total">1000</span>' in html
    assert html.count('<svg class="capi-chart" role="group"') == 2
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;-0" in html
    assert KEY not in html and "refused, key [redacted]" in html
    assert "<script" not in html.split('id="content-main"')[1].split("</svg>")[0]


def test_a_failed_request_charted_is_among_the_last_errors_after_its_events_were_sent(
    admin_client: Any, make_events: MakeEvents, api: Any
) -> None:
    (event,) = make_events(1)
    api.post(ENDPOINT, status=503, json={}, headers={"x-request-id": "req_outage"})
    api.post(ENDPOINT, json={}, headers={"x-request-id": "req_through"})
    send_pending()
    PixelPause.objects.all().delete()
    ConversionEvent.objects.filter(pk=event.pk).update(next_attempt_at=timezone.now())
    send_pending()

    html = admin_client.get(STATUS_PAGE).content.decode()

    assert statuses() == {"lead-0": Status.SENT}
    requests = html[html.index('id="capi-chart-requests"') :]
    assert 'retry later: <span class="capi-total">1</span>' in requests
    assert 'accepted: <span class="capi-total">1</span>' in requests
    assert "No errors recorded." not in html
    errors = html[html.index('class="capi-errors"') :]
    assert "server error (5xx)" in errors
    assert "request req_outage" in errors
    assert "req_through" not in errors


def test_the_newer_of_an_events_error_and_a_failed_requests_is_shown_for_its_kind(
    make_events: MakeEvents,
) -> None:
    outage = batch(
        2, 10, DeliveryBatch.Outcome.RETRY, http_status=503, error="HTTP 503: old"
    )
    (event,) = make_events(
        1, last_error_kind=ErrorKind.SERVER, last_error="HTTP 503: newer"
    )
    dropped = batch(
        1, 10, DeliveryBatch.Outcome.NETWORK_ERROR, request_id="", error="No response"
    )

    errors = {error.kind: error for error in summary.delivery_status().last_errors}

    assert set(errors) == {ErrorKind.SERVER, ErrorKind.NETWORK}
    assert (errors[ErrorKind.SERVER].event_pk, errors[ErrorKind.SERVER].error) == (
        event.pk,
        "HTTP 503: newer",
    )
    assert errors[ErrorKind.NETWORK].request_pk == dropped.pk
    assert errors[ErrorKind.NETWORK].status == "network error"
    assert outage.pk not in {error.request_pk for error in errors.values()}


def test_the_status_page_of_an_empty_outbox(admin_client: Any) -> None:
    html = admin_client.get(STATUS_PAGE).content.decode()

    assert "Nothing is pending." in html
    assert "No errors recorded." in html
    assert "No requests in these days." in html


def test_the_status_page_is_linked_from_the_admin_index(admin_client: Any) -> None:
    index = admin_client.get("/admin/").content.decode()
    app_index = admin_client.get("/admin/django_openai_capi/").content.decode()

    assert f'href="{STATUS_PAGE}"' in index
    assert f'href="{STATUS_PAGE}"' in app_index


def test_the_status_page_needs_the_permission_to_view_events(
    staff_client: StaffClient, client: Any
) -> None:
    without = staff_client(username="nobody")
    viewer = staff_client("view_conversionevent", username="viewer")

    assert without.get(STATUS_PAGE).status_code == 403
    assert f'href="{STATUS_PAGE}"' not in without.get("/admin/").content.decode()
    assert viewer.get(STATUS_PAGE).status_code == 200
    # Not logged in: the admin's login page.
    assert client.get(STATUS_PAGE).status_code == 302


def test_counts_stop_at_the_cap(make_events: MakeEvents, monkeypatch: Any) -> None:
    monkeypatch.setattr(summary, "COUNT_CAP", 3)
    make_events(5, status=Status.SENT)
    make_events(3, prefix="f", status=Status.FAILED)

    counts = {c.status: (c.count, c.capped) for c in summary.delivery_status().counts}

    assert counts["sent"] == (3, True)
    assert counts["failed"] == (3, False)


def test_the_hourly_figures_cover_every_hour_of_the_days_asked(
    make_events: MakeEvents,
) -> None:
    batch(0, 5, DeliveryBatch.Outcome.ACCEPTED)
    batch(0, 7, DeliveryBatch.Outcome.ACCEPTED, validate_only=True)
    batch(0, 5, DeliveryBatch.Outcome.REJECTED)
    batch(3, 5, DeliveryBatch.Outcome.REJECTED)
    make_events(2, status=Status.FAILED)
    make_events(1, prefix="x", status=Status.EXPIRED)
    make_events(1, prefix="c", status=Status.CANCELLED)

    hours = summary.delivery_status(days=1).hours

    assert len(hours) == 24
    assert (hours[-1].delivered, hours[-1].failed) == (5, 3)
    assert hours[-1].requests == {
        "accepted": 2,
        "rejected": 1,
        "request_refused": 0,
        "auth_error": 0,
        "rate_limited": 0,
        "retry": 0,
        "network_error": 0,
        "unexpected": 0,
    }
    assert list(hours[-1].requests) == list(DeliveryBatch.Outcome.values)
    assert hours[-4].requests["rejected"] == 1
    assert all(h.delivered == 0 and h.failed == 0 for h in hours[:-1])
    with pytest.raises(ValueError, match="days must be at least 1, got 0"):
        summary.delivery_status(days=0)


def test_requests_refused_for_a_lost_pid_are_filed_as_request_faults_not_rejections(
    admin_client: Any, make_events: MakeEvents, settings: Any
) -> None:
    with FakeConversionsAPI(api_key="test-key", pixels=["test-pixel"]) as fake:
        settings.OPENAI_CAPI_ENDPOINT = fake.url
        settings.OPENAI_CAPI_API_KEY = "test-key"
        make_events(3)
        fake.outage("missing_pid")
        send_pending()

        refused = summary.delivery_status().last_errors

        fake.outage(None)
        PixelPause.objects.all().delete()
        ConversionEvent.objects.update(next_attempt_at=timezone.now())
        send_pending()

    assert [error.kind for error in refused] == [ErrorKind.REQUEST]
    assert set(statuses().values()) == {Status.SENT}
    (after,) = summary.delivery_status().last_errors
    assert (after.kind, after.status, after.http_status) == (
        ErrorKind.REQUEST,
        "request refused",
        400,
    )
    assert after.request_pk is not None
    errors = admin_client.get(STATUS_PAGE).content.decode()
    errors = errors[errors.index('class="capi-errors"') :]
    assert "request refused, not its events" in errors
    assert "rejected" not in errors


def test_the_list_shows_status_http_status_and_error_first_the_error_whole_on_hover(
    admin_client: Any, make_events: MakeEvents, settings: Any
) -> None:
    settings.OPENAI_CAPI_API_KEY = KEY
    error = f'<b onclick="x()">refused</b> with key {KEY}: ' + "y" * 200
    make_events(
        1, status=Status.FAILED, last_http_status=400, last_error=error, payload=None
    )

    html = admin_client.get("/admin/django_openai_capi/conversionevent/").content
    html = html.decode()

    columns = re.findall(r'<th scope="col" class="[^"]*column-(\w+)', html)
    assert columns[:4] == ["id", "status", "http_status", "error_excerpt"]
    assert '<td class="field-http_status">400</td>' in html
    title = re.search(r'<span class="capi-excerpt" title="([^"]*)"', html)
    assert title is not None
    assert title[1] == (
        "&lt;b onclick=&quot;x()&quot;&gt;refused&lt;/b&gt; with key [redacted]: "
        + "y" * 200
    )
    assert KEY not in html and "<b onclick" not in html


def test_a_long_error_wraps_on_the_events_page(
    admin_client: Any, make_events: MakeEvents
) -> None:
    (event,) = make_events(1, status=Status.FAILED, last_error="z" * 2000)

    html = event_page(admin_client, event)

    assert f'<pre class="capi-error">{"z" * 2000}</pre>' in html
    assert (
        ".capi-error, .capi-payload { white-space: pre-wrap; overflow-wrap: anywhere; }"
        in html
    )
