"""The status page's figures: exact per hour, and its errors agree with its charts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from django_openai_capi.delivery.answers import OUTCOME_KIND
from django_openai_capi.maintenance import status as summary
from django_openai_capi.models import ConversionEvent, DeliveryBatch, ErrorKind
from tests.outbox import MakeEvents

pytestmark = pytest.mark.django_db

Status = ConversionEvent.Status
Outcome = DeliveryBatch.Outcome

#: The clock of every test here: 16:20, so that the last hour shown starts at 16:00.
NOW = datetime(2026, 12, 3, 16, 20, tzinfo=UTC)
HOUR = NOW.replace(minute=0)


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timezone, "now", lambda: NOW)


def request(at: datetime, outcome: str, size: int = 10, **fields: Any) -> DeliveryBatch:
    return DeliveryBatch.objects.create(
        claim_id=uuid.uuid4(),
        pixel_id="test-pixel",
        size=size,
        outcome=outcome,
        created_at=at,
        **fields,
    )


def gave_up(
    make_events: MakeEvents, at: datetime, kind: str, prefix: str, count: int = 1
) -> list[ConversionEvent]:
    """*count* events that failed (or, for the kind expired, expired) at *at*."""
    status = Status.EXPIRED if kind == ErrorKind.EXPIRED else Status.FAILED
    events = make_events(
        count, prefix=prefix, status=status, last_error_kind=kind, last_error=prefix
    )
    # auto_now wrote the save's time; an update writes what it is given.
    ConversionEvent.objects.filter(pk__in=[e.pk for e in events]).update(updated_at=at)
    return events


def by_start(hours: tuple[summary.Hour, ...]) -> dict[datetime, summary.Hour]:
    return {hour.start: hour for hour in hours}


def test_each_hour_counts_its_delivered_and_failed_events_and_requests_by_outcome(
    make_events: MakeEvents,
) -> None:
    two_ago = HOUR - timedelta(hours=2)
    request(HOUR + timedelta(minutes=5), Outcome.ACCEPTED, size=7)
    request(HOUR + timedelta(minutes=10), Outcome.ACCEPTED, size=5)
    request(HOUR + timedelta(minutes=15), Outcome.RETRY, size=12, http_status=503)
    request(two_ago + timedelta(minutes=59, seconds=59), Outcome.AUTH_ERROR)
    request(two_ago, Outcome.ACCEPTED, size=3)
    # Validate-only requests are requests (charted), but delivered nothing.
    request(HOUR, Outcome.ACCEPTED, size=100, validate_only=True)
    request(HOUR, Outcome.REJECTED, validate_only=True)
    gave_up(make_events, HOUR + timedelta(minutes=1), ErrorKind.REJECTED, "r", 2)
    gave_up(make_events, two_ago, ErrorKind.EXPIRED, "x", 3)
    # Neither failed nor expired: not charted as failed, whenever they changed.
    make_events(4, prefix="sent", status=Status.SENT)
    make_events(1, prefix="cancelled", status=Status.CANCELLED)

    hours = summary.delivery_status(days=1).hours

    assert [hour.start for hour in hours] == [
        HOUR - timedelta(hours=23 - i) for i in range(24)
    ]
    last, earlier = by_start(hours)[HOUR], by_start(hours)[two_ago]
    assert (last.delivered, last.failed) == (12, 2)
    assert dict(last.requests) == {
        **dict.fromkeys(Outcome.values, 0),
        Outcome.ACCEPTED: 3,
        Outcome.REJECTED: 1,
        Outcome.RETRY: 1,
    }
    assert list(last.requests) == list(Outcome.values)
    assert last.failed_requests == 2
    assert (earlier.delivered, earlier.failed) == (3, 3)
    assert dict(earlier.requests) == {
        **dict.fromkeys(Outcome.values, 0),
        Outcome.ACCEPTED: 1,
        Outcome.AUTH_ERROR: 1,
    }
    quiet = [hour for hour in hours if hour.start not in (HOUR, two_ago)]
    assert len(quiet) == 22
    assert all(
        (hour.delivered, hour.failed, hour.failed_requests) == (0, 0, 0)
        and list(hour.requests.values()) == [0] * len(Outcome.values)
        for hour in quiet
    )


def test_only_the_hours_shown_are_counted(make_events: MakeEvents) -> None:
    start = HOUR - timedelta(hours=23)
    request(start, Outcome.ACCEPTED, size=1)
    request(start - timedelta(microseconds=1), Outcome.ACCEPTED, size=100)
    request(HOUR + timedelta(hours=1), Outcome.RETRY)
    gave_up(make_events, start, ErrorKind.INVALID, "first")
    gave_up(make_events, start - timedelta(microseconds=1), ErrorKind.INVALID, "old")
    gave_up(make_events, HOUR + timedelta(hours=1), ErrorKind.INVALID, "later")

    hours = summary.delivery_status(days=1).hours

    assert (hours[0].delivered, hours[0].failed) == (1, 1)
    assert sum(hour.delivered for hour in hours) == 1
    assert sum(hour.failed for hour in hours) == 1
    assert sum(hour.failed_requests for hour in hours) == 0


def test_every_kind_of_failure_charted_is_listed_with_its_newest_occurrence(
    make_events: MakeEvents,
) -> None:
    made_events: dict[str, list[datetime]] = {
        ErrorKind.REJECTED: [HOUR - timedelta(hours=30), HOUR - timedelta(hours=3)],
        ErrorKind.INVALID: [HOUR - timedelta(hours=50)],
        ErrorKind.BUILD: [HOUR + timedelta(minutes=2)],
        ErrorKind.EXPIRED: [HOUR - timedelta(hours=1), HOUR - timedelta(hours=2)],
    }
    newest_event: dict[str, ConversionEvent] = {}
    for kind, times in made_events.items():
        for n, at in enumerate(times):
            (newest_event[kind],) = gave_up(make_events, at, kind, f"{kind}-{n}")
    made_requests = {
        Outcome.AUTH_ERROR: [HOUR - timedelta(hours=5), HOUR - timedelta(hours=4)],
        Outcome.RETRY: [HOUR - timedelta(hours=60)],
        Outcome.NETWORK_ERROR: [HOUR],
        Outcome.REQUEST_REFUSED: [HOUR - timedelta(hours=7)],
    }
    newest_request = {
        outcome: [request(at, outcome) for at in times][-1]
        for outcome, times in made_requests.items()
    }
    request(HOUR, Outcome.ACCEPTED)

    status = summary.delivery_status()

    charted_events = sum(hour.failed for hour in status.hours)
    charted_requests = {
        outcome: sum(hour.requests[outcome] for hour in status.hours)
        for outcome in Outcome.values
    }
    assert charted_events == sum(len(times) for times in made_events.values())
    assert {o: n for o, n in charted_requests.items() if n} == {
        **{outcome: len(times) for outcome, times in made_requests.items()},
        Outcome.ACCEPTED: 1,
    }
    listed = {error.kind: error for error in status.last_errors}
    charted_kinds = set(made_events) | {OUTCOME_KIND[o] for o in made_requests}
    assert charted_kinds <= set(listed)
    for kind, event in newest_event.items():
        assert (listed[kind].event_pk, listed[kind].error) == (
            event.pk,
            event.last_error,
        )
    for outcome, made in newest_request.items():
        assert listed[OUTCOME_KIND[outcome]].request_pk == made.pk


def test_the_failed_events_counted_stop_at_the_cap_keeping_the_newest(
    make_events: MakeEvents, monkeypatch: pytest.MonkeyPatch
) -> None:
    times = [HOUR - timedelta(hours=n) for n in range(5)]  # newest first
    for n, at in enumerate(times):
        gave_up(make_events, at, ErrorKind.REJECTED, f"f{n}")
    uncapped = summary.delivery_status(days=1)
    monkeypatch.setattr(summary, "COUNT_CAP", 3)

    capped = summary.delivery_status(days=1)

    assert uncapped.failed_counted_after is None
    assert sum(hour.failed for hour in uncapped.hours) == 5
    assert capped.failed_counted_after == times[3]
    assert [by_start(capped.hours)[at].failed for at in times] == [1, 1, 1, 0, 0]


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's planner")
def test_no_query_of_the_status_reads_the_whole_event_table(
    make_events: MakeEvents,
) -> None:
    gave_up(make_events, HOUR, ErrorKind.REJECTED, "f")
    executed: list[tuple[str, Any]] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        executed.append((sql, params))
        return execute(sql, params, many, context)

    # As the database receives them: an IN list of bound values, unlike the same
    # values written in the SQL, hides a partial index from SQLite.
    with connection.execute_wrapper(record):
        summary.delivery_status()
    # SQLite plans without statistics (nothing here runs ANALYZE), so the plan of
    # this small table is the plan of a million rows.
    table = ConversionEvent._meta.db_table
    plans = []
    with connection.cursor() as cursor:
        for sql, params in [(s, p) for s, p in executed if table in s]:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            plans.append([row[-1] for row in cursor.fetchall()])

    assert len(plans) == 6 + 1 + 2 + len(ErrorKind)
    assert not [plan for plan in plans if f"SCAN {table}" in plan], plans
    assert all("INDEX" in " ".join(plan) for plan in plans), plans


def test_the_hours_are_the_same_whichever_way_the_database_cuts_them(
    make_events: MakeEvents, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite in UTC cuts the stored text; elsewhere, Django's TruncHour does.
    request(HOUR + timedelta(minutes=5), Outcome.ACCEPTED, size=7)
    gave_up(make_events, HOUR + timedelta(minutes=1), ErrorKind.REJECTED, "r", 2)
    cut_as_text = summary.delivery_status(days=1).hours

    monkeypatch.setattr(connection, "vendor", "elsewhere")
    by_trunc_hour = summary.delivery_status(days=1).hours

    assert by_trunc_hour == cut_as_text
    assert (by_trunc_hour[-1].delivered, by_trunc_hour[-1].failed) == (7, 2)
