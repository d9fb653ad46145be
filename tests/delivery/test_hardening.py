"""Delivery under hostile conditions an adversarial review found.

A key with a trailing newline, malformed headers and error bodies, a proxy's 400, a
receiver that breaks its transaction, a dead worker on its last attempt, SQLite's
parameter limit, a pixel without a key: each ends in a defined state, nothing leaks.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import responses
from django.db import connection, transaction
from django.utils import timezone

from django_openai_capi import signals
from django_openai_capi.delivery import DeliveryReport, send_pending
from django_openai_capi.delivery.claim import claim_batch
from django_openai_capi.delivery.outcomes import Outcomes
from django_openai_capi.delivery.sender import deliver
from django_openai_capi.delivery.sweeps import reap_expired_leases
from django_openai_capi.delivery.verification import verify
from django_openai_capi.dispatch import MAX_BATCHES_PER_WAKE_UP
from django_openai_capi.models import (
    ACCEPTANCE_WINDOW,
    ConversionEvent,
    DeliveryBatch,
    PixelPause,
)
from django_openai_capi.tracking.building import BUILD_CHUNK
from tests.outbox import ENDPOINT, MakeEvents, error_envelope
from tests.testapp.models import Order, OrderLine

Status = ConversionEvent.Status

SECRET = "sk-svcacct-REVIEWSECRET0123456789abcdef"


def stored_texts() -> list[str]:
    """Every text column delivery writes: where a key must never appear."""
    return [
        *DeliveryBatch.objects.values_list("error", flat=True),
        *ConversionEvent.objects.values_list("last_error", flat=True),
        *PixelPause.objects.values_list("error", flat=True),
    ]


# 1. Key leak: a key with a trailing newline ---------------------------------------


def test_a_key_with_a_trailing_newline_is_never_stored_or_logged(
    make_events: MakeEvents,
    api: responses.RequestsMock,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The classic: the key read from a secret file or env file, newline included.
    # (E002 flags it, but checks do not run under gunicorn, Celery or RQ workers.)
    settings.OPENAI_CAPI_API_KEY = SECRET + "\n"
    make_events(2)
    api.post(ENDPOINT, json={})

    with caplog.at_level(logging.DEBUG):
        send_pending()

    # requests raises InvalidHeader quoting repr('Bearer <key>\n'); redact() looks for
    # the key *with* a real newline, so the escaped form slips through.
    for text in [*stored_texts(), caplog.text]:
        assert SECRET not in text


def test_a_malformed_key_does_not_spend_attempts(
    make_events: MakeEvents, api: responses.RequestsMock, settings: Any
) -> None:
    # A key problem is "not the events' fault" (DESIGN §4: 401/403 hold events without
    # using attempts). A key that cannot even be put in a header is treated as a
    # network error instead: attempts are spent and, at the last one, events fail.
    settings.OPENAI_CAPI_API_KEY = SECRET + "\n"
    settings.OPENAI_CAPI_MAX_ATTEMPTS = 1
    make_events(3)
    api.post(ENDPOINT, json={})

    send_pending()

    assert set(ConversionEvent.objects.values_list("status", flat=True)) == {
        Status.PENDING
    }
    assert set(ConversionEvent.objects.values_list("attempts", flat=True)) == {0}


# 2. An unexpected exception inside deliver() strands the claim --------------------


def test_a_malformed_retry_after_header_does_not_strand_the_batch(
    make_events: MakeEvents, api: responses.RequestsMock
) -> None:
    # '²'.isdigit() is True but float('²') raises ValueError, outside any try.
    make_events(3)
    api.post(ENDPOINT, status=503, body="busy", headers={"Retry-After": "\u00b2"})

    report = send_pending()  # raises ValueError: the worker (or --loop) dies

    assert report.retried == 3
    assert not ConversionEvent.objects.filter(status=Status.SENDING).exists()
    assert DeliveryBatch.objects.count() == 1


def test_an_error_envelope_with_odd_errors_does_not_strand_the_batch(
    make_events: MakeEvents, api: responses.RequestsMock
) -> None:
    # parse_error iterates error["errors"] without checking it is a list.
    make_events(3)
    api.post(
        ENDPOINT,
        status=400,
        body=json.dumps({"error": {"message": "bad", "errors": 1}}),
    )

    send_pending()  # raises TypeError: 'int' object is not iterable

    assert not ConversionEvent.objects.filter(status=Status.SENDING).exists()


# 3. Lease renewal covers only the group being sent --------------------------------


def test_a_live_isolation_keeps_the_lease_of_its_whole_claim(
    make_events: MakeEvents, api: responses.RequestsMock, settings: Any
) -> None:
    settings.OPENAI_CAPI_LEASE_SECONDS = 2
    make_events(4)
    claim = claim_batch("test-pixel", size=4)
    assert claim is not None
    reaped_meanwhile: list[int] = []
    calls = 0

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            time.sleep(1.5)  # a slow first answer: past lease/3, renewal kicks in
            return 400, {}, error_envelope(None)  # no index: bisect [0,1] [2,3]
        if calls == 2:
            time.sleep(0.7)  # the original lease has now run out
            # Another worker's pass runs its reaper now. Only [0,1] was renewed:
            # [2,3], still queued in this very isolation, is taken away.
            reaped_meanwhile.append(reap_expired_leases())
        return 200, {}, "{}"

    api.add_callback(responses.POST, ENDPOINT, callback=answer)

    report = deliver(claim, validate_only=False, worker="w")

    assert reaped_meanwhile == [0]
    assert report.sent == 4


# 4. Reaper: events failed without event_failed ------------------------------------


def test_the_reaper_signals_the_events_it_fails(
    make_events: MakeEvents, settings: Any
) -> None:
    settings.OPENAI_CAPI_MAX_ATTEMPTS = 3
    make_events(
        2,
        status=Status.SENDING,
        attempts=3,
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )
    failed: list[str] = []

    def receiver(sender: Any, event: signals.EventInfo, **kwargs: Any) -> None:
        failed.append(event.event_id)

    signals.event_failed.connect(receiver, sender=ConversionEvent)
    try:
        reap_expired_leases()
    finally:
        signals.event_failed.disconnect(receiver, sender=ConversionEvent)

    assert set(ConversionEvent.objects.values_list("status", flat=True)) == {
        Status.FAILED
    }
    assert sorted(failed) == ["lead-0", "lead-1"]


# 5. A passing verify "lifts the pause" but the held events still wait --------------


def test_a_passing_verify_lets_held_events_go_out_with_the_next_delivery(
    make_events: MakeEvents, api: responses.RequestsMock
) -> None:
    make_events(2)
    api.post(
        ENDPOINT, status=401, body=json.dumps({"error": {"message": "Unauthorized"}})
    )
    send_pending()  # held, pixel paused
    assert PixelPause.objects.exists()

    # The operator deploys a new key and runs openai_capi_verify, which passes and
    # says: "... the pause is lifted and its events go out with the next delivery."
    api.replace(responses.POST, ENDPOINT, json={})
    result = verify()
    assert result.ok
    assert any("go out with the next delivery" in note for note in result.notes)

    report = send_pending()

    # next_attempt_at of the held events is still the old pause's end.
    assert report.sent == 2


# 6. event_recorded receivers run inside the host's transaction without a savepoint -


@pytest.mark.postgres
def test_a_failing_event_recorded_receiver_cannot_break_the_hosts_save(
    db: None,
) -> None:
    def receiver(sender: Any, **kwargs: Any) -> None:
        # Any receiver whose query fails (an IntegrityError, a typo ...): send_robust
        # swallows the exception, but PostgreSQL has aborted the host's transaction.
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 / 0")

    signals.event_recorded.connect(receiver, sender=ConversionEvent)
    try:
        with transaction.atomic():
            order = Order.objects.create(number="A-1")
            # The host goes on with its own work in the same transaction.
            OrderLine.objects.create(
                order=order, sku="S", name="n", quantity=1, unit_price_cents=100
            )
    finally:
        signals.event_recorded.disconnect(receiver, sender=ConversionEvent)

    assert OrderLine.objects.count() == 1


# 7. SQLite parameter limits ---------------------------------------------------------


@pytest.fixture
def sqlite_999_variables(db: None) -> Any:
    """SQLite as built before 3.32 (Django 5.2 supports 3.31): 999 variables a statement."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    connection.ensure_connection()
    raw = connection.connection
    old = raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    yield
    raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, old)


def test_claim_without_returning_respects_the_parameter_limit(
    make_events: MakeEvents,
    api: responses.RequestsMock,
    monkeypatch: pytest.MonkeyPatch,
    sqlite_999_variables: None,
) -> None:
    # SQLite < 3.35 has no RETURNING, so the claim takes _claim_in_steps, whose
    # "id IN (1000 ids)" is not chunked; SQLite < 3.32 allows 999 variables.
    make_events(1000)
    monkeypatch.setattr(connection.features, "can_return_columns_from_insert", False)
    api.post(ENDPOINT, json={})

    report = send_pending()  # OperationalError: too many SQL variables

    assert report.sent == 1000


def test_mark_retry_chunks_count_the_case_parameters(
    make_events: MakeEvents,
    api: responses.RequestsMock,
    sqlite_999_variables: None,
) -> None:
    # chunked() keeps 16 parameters for the rest of the statement; mark_retry's CASE
    # takes two per distinct attempt count, plus ~10 others.
    for attempts in range(5):
        make_events(200, prefix=f"a{attempts}", attempts=attempts)
    api.post(ENDPOINT, status=503, body="")

    report = send_pending(max_batches=1)  # OperationalError: too many SQL variables

    assert report.retried == 1000


# 8. A partial key survives redaction when a body is cut before redacting -----------


def test_a_key_echoed_at_the_cut_of_a_body_is_not_partly_stored(
    make_events: MakeEvents, api: responses.RequestsMock, settings: Any
) -> None:
    settings.OPENAI_CAPI_API_KEY = SECRET
    make_events(1)
    # Not an error envelope: post() keeps response.text()[:500], *then* redacts.
    # The first 30 characters of the key fall inside the 500 kept.
    api.post(ENDPOINT, status=500, body="x" * 470 + SECRET)

    send_pending()

    for text in stored_texts():
        assert SECRET[:25] not in text  # 14 secret characters after "sk-svcacct-"


# 9. One wake-up is not bounded the way dispatch says ------------------------------


def test_one_wake_up_makes_a_bounded_number_of_requests(
    make_events: MakeEvents, api: responses.RequestsMock, settings: Any
) -> None:
    # dispatch.py: "10 requests of at most the default 10 s timeout". Isolation
    # multiplies that: an inline wake-up (in the host's request) can make hundreds.
    settings.OPENAI_CAPI_BATCH_SIZE = 64
    make_events(640)
    api.post(ENDPOINT, status=400, body="<html>Bad Request</html>")

    report = send_pending(max_batches=MAX_BATCHES_PER_WAKE_UP)

    assert report.requests <= MAX_BATCHES_PER_WAKE_UP * 2


def test_one_wake_up_builds_a_bounded_number_of_events(
    make_events: MakeEvents, api: responses.RequestsMock, settings: Any
) -> None:
    # _build() loops until the unbuilt backlog is gone, whatever max_batches says: a
    # wake-up in a host's request after a backfill or worker outage builds everything.
    settings.OPENAI_CAPI_RAISE_ERRORS = False
    make_events(BUILD_CHUNK * 2 + 500, payload=None)
    api.post(ENDPOINT, json={})

    report = send_pending(max_batches=MAX_BATCHES_PER_WAKE_UP)

    assert report.built + report.not_built <= BUILD_CHUNK


# 10. An opaque 400 (proxy, WAF) dead-letters every event -------------------------


def test_an_opaque_400_from_a_proxy_does_not_fail_good_events(
    make_events: MakeEvents, api: responses.RequestsMock
) -> None:
    # No error envelope, no index: bisection down to single events, each of which is
    # "refused" and failed, although nothing says any event is bad.
    make_events(8)
    api.post(ENDPOINT, status=400, body="<html><h1>400 Bad Request</h1></html>")

    send_pending()

    assert not ConversionEvent.objects.filter(status=Status.FAILED).exists()


# 11. Events of a pixel without a key stay pending past their window ---------------


def test_an_event_past_its_window_does_not_stay_pending(
    make_events: MakeEvents, api: responses.RequestsMock, settings: Any
) -> None:
    settings.OPENAI_CAPI_API_KEY = None
    settings.OPENAI_CAPI_PIXEL_API_KEYS = {"test-pixel": "test-key"}
    make_events(
        1,
        pixel_id="orphan-pixel",
        event_time=timezone.now() - ACCEPTANCE_WINDOW - timedelta(days=30),
    )
    api.post(ENDPOINT, json={})

    send_pending()

    assert ConversionEvent.objects.get().status == Status.EXPIRED


def test_a_key_that_cannot_go_in_a_header_skips_the_pixel(
    make_events: MakeEvents, api: responses.RequestsMock, settings: Any
) -> None:
    settings.OPENAI_CAPI_API_KEY = "ключ-123"
    make_events(1)

    report = send_pending()

    assert "cannot be sent in an HTTP header" in report.skipped["test-pixel"]
    assert "ключ" not in report.skipped["test-pixel"]
    assert not api.calls
    assert ConversionEvent.objects.get().attempts == 0


def test_an_unexpected_error_before_the_answer_is_no_answer(
    make_events: MakeEvents, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(pixel_id: str, body: bytes) -> None:
        raise RuntimeError("bug with test-key")

    monkeypatch.setattr("django_openai_capi.delivery.answers.post_events", broken)
    make_events(2)

    report = send_pending()

    assert report.retried == 2
    event = ConversionEvent.objects.first()
    assert event is not None
    assert event.status == Status.PENDING
    assert event.last_error == "No response: RuntimeError: bug with [redacted]"


def disk_full(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("disk full")


def when_marking_sent(fail: Callable[..., Any]) -> Callable[..., int]:
    """``Outcomes._write``, calling *fail* instead when it marks events sent."""
    write = Outcomes._write

    def writing(self: Outcomes, events: Any, **values: Any) -> int:
        if values.get("status") == Status.SENT:
            return int(fail())
        return write(self, events, **values)

    return writing


def send_two_accepted_with(
    broken: str,
    replacement: Any,
    *,
    make_events: MakeEvents,
    api: responses.RequestsMock,
    monkeypatch: pytest.MonkeyPatch,
) -> DeliveryReport:
    """Two events, a 200 from the API, and *broken* replaced while it is recorded."""
    monkeypatch.setattr(broken, replacement)
    make_events(2)
    api.post(ENDPOINT, json={})
    report = send_pending()
    assert set(ConversionEvent.objects.values_list("status", flat=True)) == {
        Status.PENDING
    }
    return report


def test_a_bug_while_recording_outcomes_puts_the_unresolved_events_back(
    make_events: MakeEvents,
    api: responses.RequestsMock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    report = send_two_accepted_with(
        "django_openai_capi.delivery.outcomes.Outcomes._write",
        when_marking_sent(disk_full),
        make_events=make_events,
        api=api,
        monkeypatch=monkeypatch,
    )

    assert report.retried == 2
    event = ConversionEvent.objects.first()
    assert event is not None
    assert event.last_error == (
        "Delivery failed before recording an answer: RuntimeError: disk full"
    )
    # The request was made: its row is written again on its own after the rollback
    # of the outcome's transaction, which held it.
    request = DeliveryBatch.objects.get()
    assert (request.http_status, request.size, request.claim_id) == (
        200,
        2,
        event.claim_id,
    )


def test_a_request_whose_row_cannot_be_written_still_puts_its_events_back(
    make_events: MakeEvents,
    api: responses.RequestsMock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    report = send_two_accepted_with(
        "django_openai_capi.models.DeliveryBatch.save",
        disk_full,
        make_events=make_events,
        api=api,
        monkeypatch=monkeypatch,
    )

    assert (report.requests, report.retried) == (1, 2)
    assert not DeliveryBatch.objects.exists()
    assert "Recording the request of batch" in caplog.text
    assert "failed too" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_a_database_error_while_recording_leaves_the_connection_usable(
    make_events: MakeEvents,
    api: responses.RequestsMock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A real error from the database, outside any test transaction: on PostgreSQL it
    # aborts the transaction, which must be rolled back before anything else runs.
    def failing(*args: Any, **kwargs: Any) -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM openai_capi_no_such_table")
        raise AssertionError("unreachable")

    report = send_two_accepted_with(
        "django_openai_capi.delivery.outcomes.Outcomes._write",
        when_marking_sent(failing),
        make_events=make_events,
        api=api,
        monkeypatch=monkeypatch,
    )

    assert (report.requests, report.retried) == (1, 2)
    assert DeliveryBatch.objects.count() == 1


def test_a_bug_while_recording_a_refusal_keeps_the_row_of_the_request_that_passed(
    make_events: MakeEvents,
    api: responses.RequestsMock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Both refused naming no event, then lead-0 alone too: a suspect, judged once
    # lead-1 alone passes, and recorded just before lead-1's acceptance.
    make_events(2)
    api.post(ENDPOINT, status=400, body=error_envelope(None))
    api.post(ENDPOINT, status=400, body=error_envelope(None))
    api.post(ENDPOINT, json={})
    monkeypatch.setattr(Outcomes, "refused", disk_full)

    report = send_pending()

    assert (report.requests, report.retried) == (3, 2)
    statuses = DeliveryBatch.objects.order_by("created_at").values_list(
        "http_status", flat=True
    )
    assert list(statuses) == [400, 400, 200]
    assert set(ConversionEvent.objects.values_list("status", flat=True)) == {
        Status.PENDING
    }
