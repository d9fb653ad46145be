"""Claims, leases, fenced outcomes and the reaper."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import responses
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_openai_capi.delivery import DeliveryReport, pauses
from django_openai_capi.delivery import claim as claim_module
from django_openai_capi.delivery.answers import Answer
from django_openai_capi.delivery.claim import (
    Claim,
    ClaimedEvent,
    claim_batch,
    renew_lease,
)
from django_openai_capi.delivery.isolation import Accepted
from django_openai_capi.delivery.outcomes import Outcomes
from django_openai_capi.delivery.sender import deliver
from django_openai_capi.delivery.sweeps import reap_expired_leases
from django_openai_capi.models import (
    ACCEPTANCE_WINDOW,
    MAX_CLAIMS_KEPT,
    ConversionEvent,
    DeliveryBatch,
    ErrorKind,
    EventPayload,
    PixelPause,
)
from tests.outbox import ENDPOINT, MakeEvents, error_envelope

Status = ConversionEvent.Status


def record_sent(claim: Claim, events: list[ClaimedEvent]) -> int:
    """Record *events* of *claim* as sent by one request; how many were written."""
    report = DeliveryReport()
    row = DeliveryBatch(
        claim_id=claim.id, pixel_id=claim.pixel_id, size=len(events), outcome="accepted"
    )
    accepted = Accepted(events, Answer(status=200))
    Outcomes(claim, report).accepted(accepted, row, validate_only=False)
    return report.sent


@pytest.fixture(params=["one statement", "in steps"])
def claim_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both claim paths: UPDATE ... RETURNING, and select-then-compare-and-set."""
    if request.param == "in steps":
        monkeypatch.setattr(
            claim_module, "updates_return_rows", lambda connection: False
        )
    return str(request.param)


def test_a_claim_takes_the_oldest_due_events_and_leases_them(
    make_events: MakeEvents, claim_path: str
) -> None:
    now = timezone.now()
    make_events(2, prefix="late", next_attempt_at=now - timedelta(seconds=1))
    make_events(2, prefix="early", next_attempt_at=now - timedelta(minutes=5))

    claim = claim_batch("test-pixel", size=3)

    assert claim is not None
    assert sorted(event.event_id for event in claim.events) == [
        "early-0",
        "early-1",
        "late-0",
    ]
    assert [event.attempts for event in claim.events] == [1, 1, 1]
    assert not any(event.stale for event in claim.events)
    claimed = ConversionEvent.objects.filter(status=Status.SENDING)
    assert claimed.count() == 3
    assert set(claimed.values_list("claim_id", flat=True)) == {claim.id}
    row = claimed.first()
    assert row is not None and row.lease_expires_at is not None
    assert row.lease_expires_at - timezone.now() > timedelta(seconds=290)


def test_every_claim_of_an_event_is_kept_in_its_claim_ids(
    make_events: MakeEvents, claim_path: str
) -> None:
    (event,) = make_events(1)

    first = claim_batch("test-pixel", size=1)
    assert first is not None
    ConversionEvent.objects.filter(pk=event.pk).update(status=Status.PENDING)
    second = claim_batch("test-pixel", size=1)
    assert second is not None

    event.refresh_from_db()
    assert event.claim_ids == f"{first.id.hex} {second.id.hex} "
    assert claim_module.claim_ids_of(event) == [first.id, second.id]


def test_claim_ids_stop_growing_at_the_cap(
    make_events: MakeEvents, claim_path: str
) -> None:
    full = "".join(f"{uuid.uuid4().hex} " for _ in range(MAX_CLAIMS_KEPT))
    (event,) = make_events(1, claim_ids=full)

    claim = claim_batch("test-pixel", size=1)

    assert claim is not None
    event.refresh_from_db()
    assert event.claim_ids == full
    # The current claim is still found through claim_id.
    assert claim_module.claim_ids_of(event)[-1] == claim.id
    assert len(claim_module.claim_ids_of(event)) == MAX_CLAIMS_KEPT + 1


def test_a_claimed_event_is_not_claimed_again(
    make_events: MakeEvents, claim_path: str
) -> None:
    make_events(2)

    first = claim_batch("test-pixel", size=1)
    second = claim_batch("test-pixel", size=5)

    assert first is not None and second is not None
    assert (len(first.events), len(second.events)) == (1, 1)
    assert {e.pk for e in first.events}.isdisjoint({e.pk for e in second.events})
    assert claim_batch("test-pixel", size=5) is None


def test_a_claim_marks_events_at_the_end_of_their_window_stale(
    make_events: MakeEvents, claim_path: str
) -> None:
    make_events(1, event_time=timezone.now() - ACCEPTANCE_WINDOW + timedelta(minutes=4))

    claim = claim_batch("test-pixel", size=5)

    assert claim is not None and claim.events[0].stale


def test_due_pixels_lists_pixels_with_sendable_events(make_events: MakeEvents) -> None:
    make_events(1, pixel_id="b")
    make_events(1, pixel_id="a")
    make_events(1, pixel_id="c", payload=None)
    make_events(1, pixel_id="d", status=Status.SENT)
    make_events(1, pixel_id="e", next_attempt_at=timezone.now() + timedelta(hours=1))
    # Pending rows of a pixel are skipped over as a whole, the not-due ones included.
    make_events(1, pixel_id="f", prefix="later")
    make_events(
        1,
        pixel_id="f",
        prefix="soon",
        next_attempt_at=timezone.now() + timedelta(hours=1),
    )

    events = ConversionEvent.objects.all()
    assert events.due_pixels() == ["a", "b", "f"]
    assert events.of_pixels(["b", "c", "e"]).due_pixels() == ["b"]


def test_the_reaper_returns_events_of_a_dead_worker_with_the_same_ids(
    make_events: MakeEvents, settings: Any
) -> None:
    settings.OPENAI_CAPI_MAX_ATTEMPTS = 2
    make_events(
        1,
        prefix="retry",
        status=Status.SENDING,
        attempts=1,
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )
    make_events(
        1,
        prefix="spent",
        status=Status.SENDING,
        attempts=2,
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )
    make_events(
        1,
        prefix="alive",
        status=Status.SENDING,
        attempts=1,
        lease_expires_at=timezone.now() + timedelta(minutes=1),
    )

    assert reap_expired_leases() == 2

    retry = ConversionEvent.objects.get(event_id="retry-0")
    assert (retry.status, retry.lease_expires_at, retry.last_error_kind) == (
        Status.PENDING,
        None,
        ErrorKind.NETWORK,
    )
    assert "back in the queue with the same id" in retry.last_error
    spent = ConversionEvent.objects.get(event_id="spent-0")
    assert spent.status == Status.FAILED
    assert "used all 2 attempts" in spent.last_error
    assert ConversionEvent.objects.get(event_id="alive-0").status == Status.SENDING


def test_an_outcome_is_not_written_over_a_newer_claim(
    make_events: MakeEvents, api: responses.RequestsMock
) -> None:
    make_events(1)
    stale_claim = claim_batch("test-pixel", size=1)
    assert stale_claim is not None
    # The lease ran out; another worker took the event back and claimed it again.
    ConversionEvent.objects.update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    reap_expired_leases()
    newer = claim_batch("test-pixel", size=1)
    assert newer is not None
    api.post(ENDPOINT, status=500, body="")

    deliver(stale_claim, validate_only=False, worker="old")

    event = ConversionEvent.objects.get()
    assert (event.status, event.claim_id) == (Status.SENDING, newer.id)
    assert not renew_lease(stale_claim, [event.pk])
    assert renew_lease(newer, [event.pk])


def test_a_whole_claim_is_recorded_by_its_claim_id_in_one_statement(
    make_events: MakeEvents, claim_path: str
) -> None:
    # More events than SQLite takes parameters in one statement, and another claim
    # beside it that must stay as it is.
    make_events(1200)
    claim = claim_batch("test-pixel", size=1100)
    other = claim_batch("test-pixel", size=100)
    assert claim is not None and other is not None

    with CaptureQueriesContext(connection) as captured:
        written = record_sent(claim, list(claim.events))

    updates = [q["sql"] for q in captured.captured_queries if "UPDATE" in q["sql"]]
    assert written == 1100
    assert len(updates) == 1
    assert '"id" IN' not in updates[0]
    assert ConversionEvent.objects.filter(status=Status.SENT).count() == 1100
    assert set(
        ConversionEvent.objects.filter(claim_id=other.id).values_list(
            "status", flat=True
        )
    ) == {Status.SENDING}


@pytest.mark.parametrize("part", ["the first two", "the first twice, then the second"])
def test_part_of_a_claim_is_recorded_by_its_ids(
    make_events: MakeEvents, claim_path: str, part: str
) -> None:
    make_events(3)
    claim = claim_batch("test-pixel", size=3)
    assert claim is not None
    first, second, _ = claim.events
    # As long as the claim, but not the claim: the third event must stay as it is.
    events = [first, second] if part == "the first two" else [first, first, second]

    written = record_sent(claim, events)

    assert written == 2
    assert [e.status for e in ConversionEvent.objects.order_by("id")] == [
        Status.SENT,
        Status.SENT,
        Status.SENDING,
    ]


def test_a_long_isolation_renews_its_lease_and_stops_when_it_is_lost(
    make_events: MakeEvents,
    api: responses.RequestsMock,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings.OPENAI_CAPI_LEASE_SECONDS = 0  # every request after the first renews
    make_events(2)
    claim = claim_batch("test-pixel", size=2)
    assert claim is not None
    api.post(ENDPOINT, status=400, body=error_envelope(None))
    monkeypatch.setattr(
        "django_openai_capi.delivery.sender.renew_lease", lambda *a, **k: False
    )

    report = deliver(claim, validate_only=False, worker="w")

    assert report.requests == 1  # the bisection stopped: the events are someone else's
    assert set(ConversionEvent.objects.values_list("status", flat=True)) == {
        Status.SENDING
    }


def test_two_workers_pausing_a_pixel_at_once_both_count(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = pauses._pause
    calls: list[int] = []

    def racing(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            PixelPause.objects.create(
                pixel_id="p", paused_until=timezone.now(), failures=1
            )
            raise IntegrityError("duplicate key")
        return real(*args)

    monkeypatch.setattr(pauses, "_pause", racing)

    pauses.pause("p", Answer(status=401), kind=ErrorKind.AUTH, error="x", advice="")

    assert PixelPause.objects.get().failures == 2


def test_an_event_whose_payload_row_was_deleted_by_hand_is_not_carried(
    make_events: MakeEvents, claim_path: str
) -> None:
    kept, lost = make_events(2)
    EventPayload.objects.filter(pk=lost.pk).delete()

    claim = claim_batch("test-pixel", size=2)

    assert claim is not None
    assert [event.pk for event in claim.events] == [kept.pk]
    assert claim.events[0].payload == kept.payload


def test_a_refusal_is_not_written_over_a_newer_claim(
    make_events: MakeEvents, api: responses.RequestsMock
) -> None:
    make_events(1)
    stale_claim = claim_batch("test-pixel", size=1)
    assert stale_claim is not None
    ConversionEvent.objects.update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    reap_expired_leases()
    assert claim_batch("test-pixel", size=1) is not None
    api.post(ENDPOINT, status=400, body=error_envelope(0))

    report = deliver(stale_claim, validate_only=False, worker="old")

    assert report.failed == 0
    assert ConversionEvent.objects.get().status == Status.SENDING


@pytest.mark.parametrize(
    ("vendor", "sql"),
    [("postgresql", "= ANY(ARRAY(SELECT 1))"), ("sqlite", "IN (SELECT 1)")],
)
def test_the_claim_runs_its_subquery_once(vendor: str, sql: str) -> None:
    connection: Any = SimpleNamespace(vendor=vendor)
    assert claim_module._in_subquery(connection, "SELECT 1") == sql


def test_on_postgresql_the_claim_reads_the_payloads_in_its_own_statement(
    make_events: MakeEvents,
) -> None:
    # Run here (SQLite, too) with a SELECT standing in for the UPDATE ... RETURNING,
    # which only PostgreSQL takes in a WITH: the same columns, in the same order.
    kept, lost = make_events(2)
    EventPayload.objects.filter(pk=lost.pk).delete()
    claimed = (
        "SELECT id, event_type, event_id, attempts, 0 AS stale, source_label "
        + "FROM django_openai_capi_conversionevent"
    )

    with connection.cursor() as cursor:
        cursor.execute(claim_module.with_payloads(claimed, connection))
        rows = cursor.fetchall()

    assert rows == [
        (kept.pk, "lead_created", "lead-0", kept.payload, 0, 0, "test:lead-0"),
        (lost.pk, "lead_created", "lead-1", None, 0, 0, "test:lead-1"),
    ]


def test_an_event_marked_built_without_its_payload_goes_back_to_the_build_step(
    make_events: MakeEvents, claim_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A copy made with pk = None keeps built_at but not the payload's row.
    kept, lost = make_events(2)
    EventPayload.objects.filter(pk=lost.pk).delete()

    claim = claim_batch("test-pixel", size=10)

    assert claim is not None
    assert [event.pk for event in claim.events] == [kept.pk]
    lost.refresh_from_db()
    assert (lost.status, lost.attempts, lost.built_at, lost.lease_expires_at) == (
        Status.PENDING,
        0,
        None,
        None,
    )
    assert ConversionEvent.objects.unbuilt().get() == lost
    assert "had no payload" in caplog.text and str(lost.pk) in caplog.text
    # Nothing left to claim until the build step has built it again.
    assert claim_batch("test-pixel", size=10) is None


def test_a_pause_says_until_when(db: None) -> None:
    pause = PixelPause(
        pixel_id="p", paused_until=datetime(2026, 11, 22, 10, 5, tzinfo=UTC)
    )
    assert str(pause) == "p paused until 2026-11-22 10:05:00"
