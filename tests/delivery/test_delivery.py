"""Delivery against a mocked endpoint: every answer ends in a defined state."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import pytest
import requests
import responses
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_openai_capi import signals
from django_openai_capi.delivery import send_pending
from django_openai_capi.models import (
    ACCEPTANCE_WINDOW,
    ConversionEvent,
    DeliveryBatch,
    ErrorKind,
    PixelPause,
)
from tests.outbox import (
    ENDPOINT,
    MakeEvents,
    body_of,
    error_envelope,
    sent_ids,
    statuses,
)

Status = ConversionEvent.Status


def test_due_events_go_out_in_one_request_and_end_sent(
    make_events: MakeEvents, api: responses.RequestsMock
) -> None:
    make_events(5)
    api.post(ENDPOINT, json={}, headers={"x-request-id": "req_abc"})

    report = send_pending()

    assert (
        report.summary()
        == "claimed 5, sent 5, retried 0, failed 0, expired 0 (1 request)"
    )
    (call,) = api.calls
    assert call.request.url == f"{ENDPOINT}?pid=test-pixel"
    assert call.request.headers["Authorization"] == "Bearer test-key"
    assert call.request.headers["Content-Type"] == "application/json"
    assert call.request.headers["User-Agent"].startswith("django-openai-capi/")
    body = body_of(call)
    assert body["validate_only"] is False
    assert [event["id"] for event in body["events"]] == [f"lead-{i}" for i in range(5)]
    assert set(statuses().values()) == {Status.SENT}
    event = ConversionEvent.objects.first()
    assert event is not None
    assert (event.attempts, event.last_http_status, event.lease_expires_at) == (
        1,
        200,
        None,
    )
    assert event.sent_at is not None
    batch = DeliveryBatch.objects.get()
    assert (batch.id, batch.claim_id) == (event.claim_id, event.claim_id)
    assert (batch.size, batch.outcome, batch.http_status, batch.request_id) == (
        5,
        DeliveryBatch.Outcome.ACCEPTED,
        200,
        "req_abc",
    )
    assert batch.finished_at is not None and batch.duration_ms is not None


def test_the_body_is_the_stored_payloads_spliced_together(
    make_events: MakeEvents, api: responses.RequestsMock, settings: Any
) -> None:
    settings.OPENAI_CAPI_INTEGRATION_SOURCE = "Acme_Shop"
    (event,) = make_events(1)
    api.post(ENDPOINT, json={})

    send_pending()

    assert (
        api.calls[0].request.body
        == (
            '{"events":[' + str(event.payload) + '],"integration_source":"acme_shop",'
            '"validate_only":false}'
        ).encode()
    )


def test_batches_are_at_most_batch_size_and_grouped_by_pixel(
    make_events: MakeEvents, api: responses.RequestsMock, settings: Any
) -> None:
    settings.OPENAI_CAPI_PIXEL_API_KEYS = {"other-pixel": "other-key"}
    make_events(5, prefix="a")
    make_events(2, pixel_id="other-pixel", prefix="b")
    api.post(ENDPOINT, json={})

    report = send_pending(batch_size=2)

    assert report.batches == 4
    by_pixel = [
        (
            str(call.request.url).rsplit("=", 1)[1],
            call.request.headers["Authorization"],
            len(sent_ids(call)),
        )
        for call in api.calls
    ]
    assert by_pixel == [
        ("other-pixel", "Bearer other-key", 2),
        ("test-pixel", "Bearer test-key", 2),
        ("test-pixel", "Bearer test-key", 2),
        ("test-pixel", "Bearer test-key", 1),
    ]
    assert set(statuses().values()) == {Status.SENT}


def test_max_batches_and_pixel_limit_what_one_pass_sends(
    make_events: MakeEvents, api: responses.RequestsMock, settings: Any
) -> None:
    settings.OPENAI_CAPI_PIXEL_API_KEYS = {"other-pixel": "other-key"}
    make_events(5)
    make_events(1, pixel_id="other-pixel", prefix="b")
    api.post(ENDPOINT, json={})

    report = send_pending(batch_size=2, max_batches=2, pixel_ids=["test-pixel"])

    assert (report.batches, report.sent) == (2, 4)
    assert ConversionEvent.objects.filter(status=Status.PENDING).count() == 2


def test_should_stop_is_asked_between_batches(
    make_events: MakeEvents, api: responses.RequestsMock
) -> None:
    make_events(3)
    api.post(ENDPOINT, json={})
    seen: list[int] = []

    report = send_pending(
        batch_size=1,
        should_stop=lambda: len(seen) >= 1,
        on_batch=lambda r: seen.append(r.batches),
    )

    assert seen == [1]
    assert (report.batches, report.sent) == (1, 1)
    assert list(statuses().values()).count(Status.PENDING) == 2


def test_a_normal_batch_costs_three_queries(
    make_events: MakeEvents, api: responses.RequestsMock
) -> None:
    make_events(50)
    api.post(ENDPOINT, json={})
    send_pending(max_batches=0)  # the per-pass work (reaper, build, pixels) first
    with CaptureQueriesContext(connection) as pass_queries:
        send_pending(max_batches=1)
    claims = [
        q
        for q in pass_queries.captured_queries
        if "RETURNING" in q["sql"] or "FOR UPDATE" in q["sql"]
    ]
    assert len(claims) == 1
    per_batch = [
        q["sql"]
        for q in pass_queries.captured_queries[
            pass_queries.captured_queries.index(claims[0]) :
        ]
        if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))
    ]
    # The claim (on SQLite, which has no UPDATE in a WITH, its UPDATE and the read of
    # the payloads), the DeliveryBatch row, the outcome; then the end of any pause.
    claim = ["WITH"] if connection.vendor == "postgresql" else ["UPDATE", "SELECT"]
    assert [sql.split()[0] for sql in per_batch] == [
        *claim,
        "INSERT",
        "UPDATE",
        "DELETE",
    ]


def test_nothing_is_sent_when_sending_is_disabled(
    make_events: MakeEvents, api: responses.RequestsMock, settings: Any
) -> None:
    settings.OPENAI_CAPI_SEND_ENABLED = False
    make_events(1)

    report = send_pending()

    assert report.disabled and not api.calls
    assert report.summary().startswith("Sending is disabled")
    assert statuses() == {"lead-0": Status.PENDING}


def test_a_pixel_without_a_key_waits_and_is_reported(
    make_events: MakeEvents, api: responses.RequestsMock, settings: Any
) -> None:
    settings.OPENAI_CAPI_API_KEY = None
    make_events(1)

    report = send_pending()

    assert not api.calls
    assert "OPENAI_CAPI_API_KEY" in report.skipped["test-pixel"]
    assert report.summary().endswith("; no key for: test-pixel")
    assert statuses() == {"lead-0": Status.PENDING}


def test_unbuilt_and_future_events_are_not_claimed(
    make_events: MakeEvents, api: responses.RequestsMock
) -> None:
    make_events(1, prefix="later", next_attempt_at=timezone.now() + timedelta(hours=1))
    make_events(1, prefix="unbuilt", payload=None)
    api.post(ENDPOINT, json={})

    report = send_pending()

    assert not api.calls and report.claimed == 0


# Retry policy -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (500, ErrorKind.SERVER),
        (502, ErrorKind.SERVER),
        (503, ErrorKind.SERVER),
        (408, ErrorKind.SERVER),
        (429, ErrorKind.RATE_LIMITED),
    ],
)
def test_a_temporary_failure_puts_the_batch_back_with_backoff_and_pauses_the_pixel(
    make_events: MakeEvents, api: responses.RequestsMock, status: int, kind: str
) -> None:
    make_events(3)
    api.post(
        ENDPOINT,
        status=status,
        json={"error": {"message": f"{status}: oops", "type": "server_error"}},
        headers={"x-request-id": "req_9"},
    )
    before = timezone.now()

    report = send_pending()

    assert (report.retried, report.failed, report.sent) == (3, 0, 0)
    assert "test-pixel" in report.paused
    assert len(api.calls) == 1  # the pixel paused: no second batch into the outage
    for event in ConversionEvent.objects.all():
        assert event.status == Status.PENDING
        assert event.attempts == 1
        assert event.last_error_kind == kind
        # The body's own "500: " is not repeated after "HTTP 500: ".
        assert event.last_error == f"HTTP {status}: oops (request req_9)"
        # RETRY_BACKOFF is 30 s: the first wait is 15 to 30 s.
        assert (
            before + timedelta(seconds=15)
            <= event.next_attempt_at
            <= timezone.now() + timedelta(seconds=30)
        )
    pause = PixelPause.objects.get()
    assert (pause.failures, pause.reason, pause.http_status, pause.request_id) == (
        1,
        kind,
        status,
        "req_9",
    )


def test_retry_after_is_a_floor_for_the_wait(
    make_events: MakeEvents, api: responses.RequestsMock
) -> None:
    make_events(1)
    api.post(ENDPOINT, status=429, headers={"Retry-After": "600"}, body="slow down")

    send_pending()

    event = ConversionEvent.objects.get()
    assert event.next_attempt_at >= timezone.now() + timedelta(seconds=590)
    assert event.last_error == "HTTP 429: slow down"
    assert PixelPause.objects.get().paused_until >= timezone.now() + timedelta(
        seconds=590
    )


def test_no_answer_at_all_is_retried(
    make_events: MakeEvents, api: responses.RequestsMock
) -> None:
    make_events(2)
    api.post(ENDPOINT, body=requests.ConnectionError("connection reset by peer"))

    report = send_pending()

    assert report.retried == 2
    event = ConversionEvent.objects.first()
    assert event is not None
    assert event.last_error_kind == ErrorKind.NETWORK
    assert event.last_error == "No response: ConnectionError: connection reset by peer"
    assert event.last_http_status is None
    batch = DeliveryBatch.objects.get()
    assert (batch.outcome, batch.http_status) == (
        DeliveryBatch.Outcome.NETWORK_ERROR,
        None,
    )


def test_an_event_that_used_its_last_attempt_fails(
    make_events: MakeEvents, api: responses.RequestsMock, settings: Any
) -> None:
    settings.OPENAI_CAPI_MAX_ATTEMPTS = 3
    make_events(1, prefix="last", attempts=2)
    make_events(1, prefix="early", attempts=0)
    api.post(ENDPOINT, status=500, body="boom")
    failed: list[signals.EventInfo] = []

    def receiver(sender: Any, event: signals.EventInfo, **kwargs: Any) -> None:
        failed.append(event)

    signals.event_failed.connect(receiver)
    try:
        report = send_pending()
    finally:
        signals.event_failed.disconnect(receiver)

    assert (report.failed, report.retried) == (1, 1)
    assert statuses() == {"last-0": Status.FAILED, "early-0": Status.PENDING}
    last = ConversionEvent.objects.get(event_id="last-0")
    assert last.last_error == "Gave up after 3 attempts. Last: HTTP 500: boom"
    assert [(info.event_id, info.kind, info.http_status) for info in failed] == [
        ("last-0", ErrorKind.SERVER, 500)
    ]


def test_a_retry_is_never_scheduled_past_the_events_window(
    make_events: MakeEvents, api: responses.RequestsMock, settings: Any
) -> None:
    settings.OPENAI_CAPI_RETRY_BACKOFF = 3600.0
    closing = timezone.now() - ACCEPTANCE_WINDOW + timedelta(minutes=30)
    (event,) = make_events(1, event_time=closing)
    api.post(ENDPOINT, status=503, body="")

    send_pending()

    event.refresh_from_db()
    assert event.next_attempt_at <= event.expires_at - timedelta(minutes=5)


# Auth and configuration problems ----------------------------------------------


@pytest.mark.parametrize(
    ("status", "message", "advice"),
    [
        (401, "Unauthorized", "must be a Conversions API key"),
        (403, "403: unknown pid", "Check the Pixel ID"),
        (404, "Not Found", "Check OPENAI_CAPI_ENDPOINT"),
    ],
)
def test_a_refused_key_or_pixel_holds_the_events_without_using_attempts(
    make_events: MakeEvents,
    api: responses.RequestsMock,
    caplog: pytest.LogCaptureFixture,
    status: int,
    message: str,
    advice: str,
) -> None:
    make_events(3)
    api.post(
        ENDPOINT,
        status=status,
        json={
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        },
    )

    with caplog.at_level(logging.ERROR, "django_openai_capi.delivery"):
        report = send_pending()

    assert (report.retried, report.failed) == (3, 0)
    assert advice in report.problems[0]
    assert advice in caplog.text and "test-key" not in caplog.text
    for event in ConversionEvent.objects.all():
        assert (event.status, event.attempts) == (Status.PENDING, 0)
        assert event.next_attempt_at > timezone.now()
    assert PixelPause.objects.get().failures == 1


def test_a_paused_pixel_is_skipped_until_its_pause_ends(
    make_events: MakeEvents, api: responses.RequestsMock
) -> None:
    make_events(1)
    PixelPause.objects.create(
        pixel_id="test-pixel",
        paused_until=timezone.now() + timedelta(minutes=1),
        failures=2,
    )
    api.post(ENDPOINT, json={})

    assert "test-pixel" in send_pending().paused
    assert not api.calls

    PixelPause.objects.update(paused_until=timezone.now() - timedelta(seconds=1))
    assert send_pending().sent == 1
    assert not PixelPause.objects.exists()  # a success ends the pause


def test_consecutive_failures_double_the_pause(
    make_events: MakeEvents, api: responses.RequestsMock
) -> None:
    make_events(1)
    api.post(ENDPOINT, status=401, body="Unauthorized")
    send_pending()
    first = PixelPause.objects.get().paused_until
    PixelPause.objects.update(paused_until=timezone.now())
    ConversionEvent.objects.update(next_attempt_at=timezone.now())

    send_pending()

    pause = PixelPause.objects.get()
    assert pause.failures == 2
    assert pause.paused_until - timezone.now() > (first - timezone.now()) * 0.9


# Rejected batches ----------------------------------------------------------------


def test_one_bad_event_named_by_the_api_costs_one_extra_request(
    make_events: MakeEvents, api: responses.RequestsMock
) -> None:
    make_events(1000)
    bad = "lead-617"

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        ids = [event["id"] for event in json.loads(request.body)["events"]]
        if bad in ids:
            return (
                400,
                {"x-request-id": "req_bad"},
                error_envelope(
                    ids.index(bad),
                    "events[i].data.type must be a supported data type.",
                    "missing_event_data_type",
                ),
            )
        return 200, {}, "{}"

    api.add_callback("POST", ENDPOINT, callback=answer)

    report = send_pending()

    assert len(api.calls) == 2
    assert (report.sent, report.failed, report.requests) == (999, 1, 2)
    event = ConversionEvent.objects.get(event_id=bad)
    assert event.status == Status.FAILED
    assert event.last_error_kind == ErrorKind.REJECTED
    assert event.last_error == (
        "Refused by the API: events[617].data.type: events[i].data.type must be a "
        "supported data type. [missing_event_data_type] (request req_bad)"
    )
    assert event.last_http_status == 400
    outcomes = list(
        DeliveryBatch.objects.order_by("created_at").values_list("outcome", "size")
    )
    assert outcomes == [("rejected", 1000), ("accepted", 999)]


def test_without_an_index_the_batch_is_bisected(
    make_events: MakeEvents, api: responses.RequestsMock
) -> None:
    make_events(64)
    bad = {"lead-5", "lead-40"}

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        ids = {event["id"] for event in json.loads(request.body)["events"]}
        if ids & bad:
            return 422, {}, error_envelope(None)
        return 200, {}, "{}"

    api.add_callback("POST", ENDPOINT, callback=answer)

    report = send_pending()

    assert (report.sent, report.failed) == (62, 2)
    assert {e for e, s in statuses().items() if s == Status.FAILED} == bad
    # log2(64) = 6 levels, two requests a level, for each bad event, at most.
    assert len(api.calls) <= 1 + 2 * 6 * 2
    assert ConversionEvent.objects.get(event_id="lead-5").last_error == (
        "Refused by the API: Invalid event. [invalid_event]"
    )


def test_an_event_refused_as_too_old_is_expired_not_failed(
    make_events: MakeEvents, api: responses.RequestsMock
) -> None:
    make_events(2)
    envelope = {
        "error": {
            "message": "event_timestamp_ms must be within the last 7 days.",
            "type": "invalid_request_error",
            "param": "events[1].timestamp_ms",
            "code": "event_timestamp_too_old",
        }
    }
    api.post(ENDPOINT, status=422, json=envelope)
    api.post(ENDPOINT, json={})

    report = send_pending()

    assert (report.sent, report.expired) == (1, 1)
    assert statuses() == {"lead-0": Status.SENT, "lead-1": Status.EXPIRED}
    assert (
        ConversionEvent.objects.get(event_id="lead-1").last_error_kind
        == ErrorKind.EXPIRED
    )


def test_a_server_failure_during_isolation_puts_the_rest_back(
    make_events: MakeEvents, api: responses.RequestsMock
) -> None:
    make_events(4)
    api.post(ENDPOINT, status=400, body=error_envelope(0))
    api.post(ENDPOINT, status=503, body="down")

    report = send_pending()

    assert (report.failed, report.retried, report.sent) == (1, 3, 0)
    assert statuses() == {
        "lead-0": Status.FAILED,
        "lead-1": Status.PENDING,
        "lead-2": Status.PENDING,
        "lead-3": Status.PENDING,
    }


def test_isolation_stops_at_its_request_budget(
    make_events: MakeEvents,
    api: responses.RequestsMock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        "django_openai_capi.delivery.isolation.isolation_budget", lambda size: 2
    )
    make_events(4)
    api.post(ENDPOINT, status=400, body=error_envelope(None))

    report = send_pending()

    assert len(api.calls) == 2
    assert report.retried == 4
    event = ConversionEvent.objects.first()
    assert event is not None
    assert event.status == Status.PENDING
    assert "request budget" in event.last_error


# Expiry ----------------------------------------------------------------------------


def test_events_past_their_window_are_expired_before_sending(
    make_events: MakeEvents, api: responses.RequestsMock
) -> None:
    make_events(1, prefix="fresh")
    make_events(
        2,
        prefix="stale",
        event_time=timezone.now() - ACCEPTANCE_WINDOW + timedelta(minutes=2),
    )
    api.post(ENDPOINT, json={})
    expired: list[str] = []

    def receiver(sender: Any, event: signals.EventInfo, **kwargs: Any) -> None:
        expired.append(event.event_id)

    signals.event_expired.connect(receiver)
    try:
        report = send_pending()
    finally:
        signals.event_expired.disconnect(receiver)

    assert (report.sent, report.expired) == (1, 2)
    assert sent_ids(api.calls[0]) == ["fresh-0"]
    assert statuses() == {
        "fresh-0": Status.SENT,
        "stale-0": Status.EXPIRED,
        "stale-1": Status.EXPIRED,
    }
    assert sorted(expired) == ["stale-0", "stale-1"]
    assert "7-day window" in ConversionEvent.objects.get(event_id="stale-0").last_error


def test_a_batch_of_only_stale_events_makes_no_request(
    make_events: MakeEvents, api: responses.RequestsMock
) -> None:
    make_events(2, event_time=timezone.now() - ACCEPTANCE_WINDOW)

    report = send_pending()

    assert not api.calls and report.expired == 2


# validate_only ------------------------------------------------------------------------


def test_validate_only_delivery_ends_events_cancelled_not_sent(
    make_events: MakeEvents, api: responses.RequestsMock, settings: Any
) -> None:
    settings.OPENAI_CAPI_VALIDATE_ONLY = True
    make_events(2)
    api.post(ENDPOINT, json={})

    report = send_pending()

    assert body_of(api.calls[0])["validate_only"] is True
    assert (report.validated, report.sent) == (2, 0)
    assert "validated 2" in report.summary()
    event = ConversionEvent.objects.first()
    assert event is not None
    assert (event.status, event.sent_at) == (Status.CANCELLED, None)
    assert "validate_only" in event.last_error
    assert DeliveryBatch.objects.get().validate_only


# Signals -----------------------------------------------------------------------------


def test_batch_sent_reaches_receivers_and_a_broken_receiver_changes_nothing(
    make_events: MakeEvents,
    api: responses.RequestsMock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    make_events(2)
    api.post(ENDPOINT, json={})
    seen: list[tuple[DeliveryBatch, list[int]]] = []

    def good(
        sender: Any, batch: DeliveryBatch, event_pks: list[int], **kwargs: Any
    ) -> None:
        seen.append((batch, event_pks))

    def broken(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("receiver bug test-key")

    signals.batch_sent.connect(good)
    signals.batch_sent.connect(broken)
    try:
        report = send_pending()
    finally:
        signals.batch_sent.disconnect(good)
        signals.batch_sent.disconnect(broken)

    assert report.sent == 2
    ((batch, pks),) = seen
    assert batch.size == 2 and len(pks) == 2
    assert "RuntimeError: receiver bug [redacted]" in caplog.text


def test_when_every_event_of_a_group_is_blamed_nothing_is_resent(
    make_events: MakeEvents, api: responses.RequestsMock
) -> None:
    make_events(2)
    envelope = {
        "error": {
            "message": "Invalid events.",
            "param": "events[0]",
            "errors": [
                {"message": "a", "param": "events[0].data", "code": "c"},
                {"message": "b", "param": "events[1].data", "code": "c"},
            ],
        }
    }
    api.post(ENDPOINT, status=400, json=envelope)

    report = send_pending()

    assert (len(api.calls), report.failed) == (1, 2)


def test_a_batch_of_events_on_their_last_attempt_fails_whole(
    make_events: MakeEvents, api: responses.RequestsMock, settings: Any
) -> None:
    settings.OPENAI_CAPI_MAX_ATTEMPTS = 1
    make_events(2)
    api.post(ENDPOINT, status=500, body="")

    report = send_pending()

    assert (report.failed, report.retried) == (2, 0)
    assert set(statuses().values()) == {Status.FAILED}
    assert {event.last_error for event in ConversionEvent.objects.all()} == {
        "Gave up after 1 attempt. Last: HTTP 500: (empty body)"
    }


def test_the_summary_mentions_building_reaping_and_pauses(
    make_events: MakeEvents, api: responses.RequestsMock
) -> None:
    make_events(
        1,
        prefix="lost",
        status=Status.SENDING,
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )
    api.post(ENDPOINT, status=401, body="Unauthorized")

    report = send_pending()

    until = report.paused["test-pixel"]
    assert report.summary() == (
        "claimed 1, sent 0, retried 1, failed 0, expired 0 (1 request; "
        f"1 taken back from stopped workers); paused: test-pixel until {until:%H:%M:%S}"
    )


def test_a_pause_that_already_ended_is_not_reported(
    make_events: MakeEvents, api: responses.RequestsMock, settings: Any
) -> None:
    settings.OPENAI_CAPI_RETRY_BACKOFF = 0.000001
    settings.OPENAI_CAPI_RETRY_BACKOFF_MAX = 0.000001
    make_events(1)
    api.post(ENDPOINT, status=503, body="")

    report = send_pending()

    assert report.retried == 1 and report.paused == {}


def test_the_pass_builds_recorded_conversions_before_claiming(
    db: None, api: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.testapp.models import Order

    monkeypatch.setattr("django_openai_capi.delivery.worker.BUILD_CHUNK", 2)
    for number in range(3):
        Order.objects.create(number=f"A-{number}", email="a@example.com")
    api.post(ENDPOINT, json={})

    report = send_pending()

    assert (report.built, report.sent) == (3, 3)
    assert "built 3, not built 0" in report.summary()


def test_a_conversion_that_cannot_be_built_does_not_stop_the_pass(
    db: None, api: responses.RequestsMock, swap_conversion: Any
) -> None:
    from django_openai_capi import ModelConversion
    from tests.testapp.models import Order

    class Broken(ModelConversion[Order]):
        event_type = "order_created"

        def get_data(self, obj: Order) -> dict[str, object]:
            raise RuntimeError("no data")

    swap_conversion(Order, Broken)
    Order.objects.create(number="B-1", email="a@example.com")

    report = (
        send_pending()
    )  # RAISE_ERRORS is on in the tests: stored, then raised, then caught

    assert report.claimed == 0
    assert ConversionEvent.objects.get().status == Status.FAILED


def test_a_malformed_integration_source_claims_nothing(
    make_events: MakeEvents,
    api: responses.RequestsMock,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings.OPENAI_CAPI_INTEGRATION_SOURCE = "no spaces allowed"
    make_events(1)

    with caplog.at_level(logging.ERROR):
        first = send_pending()
        second = send_pending()

    assert "OPENAI_CAPI_INTEGRATION_SOURCE" in first.skipped["test-pixel"]
    assert second.skipped == first.skipped
    assert caplog.text.count("OPENAI_CAPI_INTEGRATION_SOURCE") == 1  # once per process
    assert statuses() == {"lead-0": Status.PENDING}
    assert not api.calls


def test_missing_scopes_get_their_own_advice(
    make_events: MakeEvents, api: responses.RequestsMock
) -> None:
    make_events(1)
    api.post(
        ENDPOINT,
        status=401,
        json={
            "error": {
                "message": "You have insufficient permissions for this operation. Missing scopes: ads.third_party_events.write."
            }
        },
    )

    report = send_pending()

    assert "Advertiser API key" in report.problems[0]
