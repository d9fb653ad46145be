"""Delivery end to end: the real client over real HTTP to the fake API on loopback."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from django_openai_capi.delivery import send_pending
from django_openai_capi.models import (
    ACCEPTANCE_WINDOW,
    ConversionEvent,
    DeliveryBatch,
    ErrorKind,
    PixelPause,
)
from django_openai_capi.testing import FakeConversionsAPI
from tests.outbox import MakeEvents, statuses

Status = ConversionEvent.Status


@pytest.fixture
def fake(settings: Any) -> Iterator[FakeConversionsAPI]:
    with FakeConversionsAPI(api_key="test-key", pixels=["test-pixel"]) as api:
        settings.OPENAI_CAPI_ENDPOINT = api.url
        yield api


@pytest.fixture
def fast_retries(settings: Any) -> None:
    """Waits of microseconds: a retry or the end of a pause is due at once."""
    settings.OPENAI_CAPI_RETRY_BACKOFF = 0.000001
    settings.OPENAI_CAPI_RETRY_BACKOFF_MAX = 0.000001


def test_a_backlog_is_delivered_in_full_batches_each_event_once(
    make_events: MakeEvents, fake: FakeConversionsAPI
) -> None:
    make_events(2500)

    report = send_pending()

    assert (report.sent, report.requests) == (2500, 3)
    assert [len(request.event_ids) for request in fake.requests] == [1000, 1000, 500]
    assert set(fake.receipts.values()) == {1}
    assert len(fake.accepted) == 2500
    assert set(statuses().values()) == {Status.SENT}
    request_ids = {request.request_id for request in fake.requests}
    assert (
        set(DeliveryBatch.objects.values_list("request_id", flat=True)) == request_ids
    )


def test_one_bad_event_among_a_thousand(
    make_events: MakeEvents, fake: FakeConversionsAPI
) -> None:
    make_events(1000)
    fake.reject_events(
        {"lead-321"}, message="events[321].data.type must be a supported data type."
    )

    report = send_pending()

    assert (report.sent, report.failed) == (999, 1)
    assert len(fake.requests) <= 11
    assert len(fake.accepted) == 999
    bad = ConversionEvent.objects.get(event_id="lead-321")
    assert bad.status == Status.FAILED
    assert "events[321].data.type must be a supported data type." in bad.last_error
    assert fake.requests[0].request_id in bad.last_error


@pytest.mark.parametrize(
    ("fault", "status", "kind", "attempts"),
    [
        ("unauthorized", 401, ErrorKind.AUTH, 0),
        ("missing_scope", 401, ErrorKind.AUTH, 0),
        ("unknown_pid", 403, ErrorKind.AUTH, 0),
        ("auth_backend_failure", 503, ErrorKind.SERVER, 1),
        ("server_error", 500, ErrorKind.SERVER, 1),
        ("bad_gateway", 502, ErrorKind.SERVER, 1),
        ("rate_limited", 429, ErrorKind.RATE_LIMITED, 1),
        ("drop", None, ErrorKind.NETWORK, 1),
    ],
)
def test_every_failure_leaves_the_events_pending_and_then_they_go_through(
    make_events: MakeEvents,
    fake: FakeConversionsAPI,
    fast_retries: None,
    fault: Any,
    status: int | None,
    kind: str,
    attempts: int,
) -> None:
    make_events(10)
    fake.fail_next(fault)

    first = send_pending()

    assert (first.sent, first.failed, first.retried) == (0, 0, 10)
    for event in ConversionEvent.objects.all():
        assert (
            event.status,
            event.last_http_status,
            event.last_error_kind,
            event.attempts,
        ) == (
            Status.PENDING,
            status,
            kind,
            attempts,
        )

    second = send_pending()

    assert second.sent == 10
    assert set(statuses().values()) == {Status.SENT}
    assert not PixelPause.objects.exists()


def test_a_timeout_is_retried_and_the_api_keeps_the_first_copy(
    make_events: MakeEvents, fake: FakeConversionsAPI, fast_retries: None, settings: Any
) -> None:
    settings.OPENAI_CAPI_TIMEOUT = 0.2
    make_events(3)
    fake.fail_next("delay", seconds=0.5)  # processed, but the answer comes too late

    first = send_pending()
    second = send_pending()

    assert (first.retried, second.sent) == (3, 3)
    event = ConversionEvent.objects.first()
    assert event is not None and event.attempts == 2
    # The same ids both times: the API counted each conversion once.
    assert set(fake.receipts.values()) == {2}
    assert len(fake.accepted) == 3


def test_an_auth_outage_then_recovery_loses_nothing(
    make_events: MakeEvents,
    fake: FakeConversionsAPI,
    fast_retries: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    make_events(3000)
    fake.outage("auth_backend_failure")
    send_pending()
    fake.outage("unauthorized")
    with caplog.at_level(logging.ERROR):
        during = send_pending()

    assert during.failed == 0 and during.sent == 0
    assert "Conversions API key" in caplog.text
    assert "test-key" not in caplog.text

    fake.outage(None)
    after = send_pending()

    assert after.sent == 3000
    assert set(statuses().values()) == {Status.SENT}
    assert len(fake.accepted) == 3000
    # The refused key cost no attempt. The 503 cost one to the batch that met it, and
    # paused the pixel: the rest of the backlog was not thrown into the outage.
    attempts = list(ConversionEvent.objects.values_list("attempts", flat=True))
    assert (attempts.count(2), attempts.count(1)) == (1000, 2000)


def test_retry_after_holds_the_pixel_back(
    make_events: MakeEvents, fake: FakeConversionsAPI
) -> None:
    make_events(2)
    fake.fail_next("rate_limited", retry_after=120)

    first = send_pending()
    send_pending()

    assert first.paused["test-pixel"] >= timezone.now() + timedelta(seconds=110)
    assert PixelPause.objects.get().paused_until == first.paused["test-pixel"]
    assert len(fake.requests) == 1
    for event in ConversionEvent.objects.all():
        assert event.next_attempt_at >= timezone.now() + timedelta(seconds=110)


def test_an_expired_event_never_reaches_the_api(
    make_events: MakeEvents, fake: FakeConversionsAPI
) -> None:
    make_events(2, prefix="fresh")
    make_events(
        2,
        prefix="old",
        event_time=timezone.now() - ACCEPTANCE_WINDOW - timedelta(hours=1),
    )

    report = send_pending()

    assert (report.sent, report.expired) == (2, 2)
    assert sorted(fake.accepted_ids()) == ["fresh-0", "fresh-1"]


def test_validate_only_requests_are_checked_but_not_recorded_by_the_api(
    make_events: MakeEvents, fake: FakeConversionsAPI, settings: Any
) -> None:
    settings.OPENAI_CAPI_VALIDATE_ONLY = True
    make_events(2)

    report = send_pending()

    assert report.validated == 2
    assert fake.requests[0].validate_only
    assert fake.accepted == {}
