"""``openai_capi_cleanup`` deletes old finished rows, a batch at a time, and nothing else."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_openai_capi.maintenance.cleanup import cleanup
from django_openai_capi.models import ConversionEvent, DeliveryBatch, EventPayload
from tests.commands.conftest import Run

pytestmark = pytest.mark.django_db

Status = ConversionEvent.Status
_ids = iter(range(1_000_000))


def event(
    status: str, *, days_old: float, payload: str | None = None
) -> ConversionEvent:
    created = timezone.now() - timedelta(days=days_old)
    row = ConversionEvent(
        pixel_id="test-pixel",
        event_type="order_created",
        event_id=f"testapp.order:{next(_ids)}",
        event_time=created,
        expires_at=created + timedelta(days=7),
        status=status,
        created_at=created,
    )
    if payload is not None:
        row.payload = payload
    row.save()
    return row


def request(*, days_old: float) -> DeliveryBatch:
    return DeliveryBatch.objects.create(
        claim_id=uuid.uuid4(),
        pixel_id="test-pixel",
        size=1,
        outcome=DeliveryBatch.Outcome.ACCEPTED,
        created_at=timezone.now() - timedelta(days=days_old),
    )


def remaining() -> set[str]:
    return set(ConversionEvent.objects.values_list("status", flat=True))


def test_old_sent_expired_and_cancelled_events_go_and_the_rest_stays(run: Run) -> None:
    for status in Status.values:
        event(status, days_old=40)

    out = run("openai_capi_cleanup", "--days=30")

    assert remaining() == {"pending", "sending", "failed"}
    assert out.stdout.startswith(
        "Deleted 3 events (sent, expired, cancelled) and 0 delivery batches created "
        + "before "
    )
    assert "(30 days ago); pending, sending and failed events kept." in out.stdout


def test_include_failed_deletes_old_failed_events_too(run: Run) -> None:
    for status in Status.values:
        event(status, days_old=40)

    out = run("openai_capi_cleanup", "--days=30", "--include-failed")

    assert remaining() == {"pending", "sending"}
    assert "Deleted 4 events (sent, expired, cancelled, failed)" in out.stdout
    assert "pending and sending events kept." in out.stdout


def test_recent_rows_are_kept_whatever_their_status(run: Run) -> None:
    for status in Status.values:
        event(status, days_old=29)
    request(days_old=29)

    run("openai_capi_cleanup", "--days=30", "--include-failed")

    assert ConversionEvent.objects.count() == len(Status.values)
    assert DeliveryBatch.objects.count() == 1


def test_old_delivery_batches_are_deleted_and_recent_ones_kept(run: Run) -> None:
    old = [request(days_old=31) for _ in range(3)]
    recent = request(days_old=1)

    out = run("openai_capi_cleanup", "--days=30", "--batch-size=2")

    assert list(DeliveryBatch.objects.all()) == [recent]
    assert f"and {len(old)} delivery batches" in out.stdout


def test_rows_are_deleted_in_batches_each_in_its_own_short_transaction(
    run: Run,
) -> None:
    for _ in range(5):
        event(Status.SENT, days_old=40)
    pending = event(Status.PENDING, days_old=40)

    with CaptureQueriesContext(connection) as captured:
        run("openai_capi_cleanup", "--days=30", "--batch-size=2")

    deletes = [
        query["sql"]
        for query in captured.captured_queries
        if query["sql"].startswith('DELETE FROM "django_openai_capi_conversionevent"')
    ]
    assert len(deletes) == 3  # 2 + 2 + 1
    # A savepoint (the test's own transaction stands in for the outer one) per batch.
    savepoints = [
        query["sql"]
        for query in captured.captured_queries
        if query["sql"].startswith("SAVEPOINT")
    ]
    assert len(savepoints) == 4 + 1  # events: 2, 2, 1, none left; batches: none
    assert list(ConversionEvent.objects.all()) == [pending]


def test_payloads_go_with_their_events_in_one_statement_per_batch(run: Run) -> None:
    old = [event(Status.SENT, days_old=40, payload=f'{{"n":{n}}}') for n in range(5)]
    kept = event(Status.FAILED, days_old=40, payload='{"kept":1}')
    recent = event(Status.SENT, days_old=1, payload='{"recent":1}')

    with CaptureQueriesContext(connection) as captured:
        run("openai_capi_cleanup", "--days=30", "--batch-size=3")

    assert set(EventPayload.objects.values_list("json", flat=True)) == {
        '{"kept":1}',
        '{"recent":1}',
    }
    assert ConversionEvent.objects.get(pk=kept.pk).payload == '{"kept":1}'
    assert ConversionEvent.objects.get(pk=recent.pk).payload == '{"recent":1}'
    payload_deletes = [
        query["sql"]
        for query in captured.captured_queries
        if query["sql"].startswith('DELETE FROM "django_openai_capi_eventpayload"')
    ]
    # Two batches (3 and 2 events; the failed one in between is kept), no per-row
    # reads or deletes: a range and the events left behind, not a list of ids.
    assert len(payload_deletes) == 2
    assert not [sql for sql in payload_deletes if str(old[0].pk) + ", " in sql]


def test_a_dry_run_counts_and_deletes_nothing(run: Run) -> None:
    event(Status.SENT, days_old=40)
    event(Status.FAILED, days_old=40)
    request(days_old=40)

    out = run("openai_capi_cleanup", "--days=30", "--dry-run")

    assert ConversionEvent.objects.count() == 2
    assert DeliveryBatch.objects.count() == 1
    assert out.stdout.startswith(
        "Would delete 1 events (sent, expired, cancelled) and 1 delivery batches"
    )


def test_the_default_age_is_the_retention_setting(run: Run, settings: Any) -> None:
    settings.OPENAI_CAPI_RETENTION_DAYS = 10
    kept = event(Status.SENT, days_old=9)
    event(Status.SENT, days_old=11)

    out = run("openai_capi_cleanup")

    assert list(ConversionEvent.objects.all()) == [kept]
    assert "(10 days ago)" in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--days=0"], "--days must be at least 1, got 0."),
        (["--days=-3"], "--days must be at least 1, got -3."),
        (["--days=a week"], "argument --days: invalid int value: 'a week'"),
        (["--batch-size=0"], "--batch-size must be at least 1, got 0."),
        (["--batch-size=many"], "argument --batch-size: invalid int value: 'many'"),
    ],
)
def test_bad_option_values_are_refused_by_name(
    run_failing: Run, args: list[str], message: str
) -> None:
    event(Status.SENT, days_old=40)
    assert message in run_failing("openai_capi_cleanup", *args).error
    assert ConversionEvent.objects.count() == 1


@pytest.mark.parametrize("value", [0, "30", True, None])
def test_a_wrong_retention_setting_stops_the_cleanup(
    run: Run, run_failing: Run, settings: Any, value: object
) -> None:
    settings.OPENAI_CAPI_RETENTION_DAYS = value
    event(Status.SENT, days_old=40)

    out = run_failing("openai_capi_cleanup")

    assert out.error == (
        f"OPENAI_CAPI_RETENTION_DAYS is {value!r}: set it to a whole number of days "
        + "(at least 1), or pass --days."
    )
    assert ConversionEvent.objects.count() == 1
    run("openai_capi_cleanup", "--days=30")  # --days needs no setting
    assert ConversionEvent.objects.count() == 0


def test_the_library_function_refuses_what_the_command_would(settings: Any) -> None:
    with pytest.raises(ValueError, match="days must be a whole number of at least 1"):
        cleanup(days=0)
    settings.OPENAI_CAPI_RETENTION_DAYS = "30"
    with pytest.raises(ValueError, match="got '30'"):
        cleanup()
    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0"):
        cleanup(days=1, batch_size=0)


def test_the_library_function_reports_what_it_deleted() -> None:
    event(Status.CANCELLED, days_old=3)
    request(days_old=3)

    report = cleanup(days=2, using="default")

    assert (report.events, report.batches, report.dry_run) == (1, 1, False)
    assert report.statuses == ("sent", "expired", "cancelled")
    assert timezone.now() - report.cutoff >= timedelta(days=2)


def test_the_summary_says_one_day_in_the_singular(run: Run) -> None:
    assert "(1 day ago)" in run("openai_capi_cleanup", "--days=1").stdout
