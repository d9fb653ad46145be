"""Resend and cancel, as the library functions the admin's actions call."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.db.models import QuerySet
from django.utils import timezone

from django_openai_capi import build_pending
from django_openai_capi.delivery.policy import EXPIRY_MARGIN
from django_openai_capi.maintenance import resend as resending
from django_openai_capi.maintenance.resend import cancel, resend
from django_openai_capi.models import ACCEPTANCE_WINDOW, ConversionEvent, ErrorKind
from tests.outbox import MakeEvents

pytestmark = pytest.mark.django_db

Status = ConversionEvent.Status


def everything() -> Any:
    return ConversionEvent.objects.all()


def test_a_resend_puts_failed_and_cancelled_events_back_to_pending_from_scratch(
    make_events: MakeEvents,
) -> None:
    claim = uuid.uuid4()
    failed = make_events(
        2,
        prefix="failed",
        status=Status.FAILED,
        attempts=20,
        claim_id=claim,
        last_http_status=503,
        last_error="Gave up after 20 attempts. Last: HTTP 503",
        last_error_kind=ErrorKind.SERVER,
        next_attempt_at=timezone.now() - timedelta(days=2),
        sent_at=None,
    )
    make_events(1, prefix="cancelled", status=Status.CANCELLED, attempts=1)
    before = timezone.now()

    result = resend(everything())

    assert (result.changed, result.refused_count, result.moved_on) == (3, 0, 0)
    event = ConversionEvent.objects.get(pk=failed[0].pk)
    assert event.status == Status.PENDING
    assert event.attempts == 0
    assert event.next_attempt_at >= before
    assert event.lease_expires_at is None
    # The identity is unchanged, so the API deduplicates an event it already has.
    assert (event.pixel_id, event.event_type, event.event_id, event.event_time) == (
        failed[0].pixel_id,
        failed[0].event_type,
        failed[0].event_id,
        failed[0].event_time,
    )
    assert event.payload == failed[0].payload
    # Why it failed, and the requests that carried it, stay visible until the next
    # outcome replaces them.
    assert (event.last_error_kind, event.last_http_status, event.claim_id) == (
        ErrorKind.SERVER,
        503,
        claim,
    )
    assert event.last_error.startswith("Gave up after 20 attempts")


def test_events_in_other_statuses_are_refused_each_with_its_reason(
    make_events: MakeEvents,
) -> None:
    for status in (Status.PENDING, Status.SENDING, Status.SENT, Status.EXPIRED):
        make_events(1, prefix=status, status=status)

    result = resend(everything())

    assert result.changed == 0
    assert result.refused_count == 4
    assert sorted(str(refusal) for refusal in result.refused) == [
        "expired-0: expired: past the 7-day window the API accepts",
        "pending-0: already pending: delivery will send it",
        "sending-0: being sent right now",
        "sent-0: already sent: the API has it",
    ]
    assert set(ConversionEvent.objects.values_list("status", flat=True)) == {
        Status.PENDING,
        Status.SENDING,
        Status.SENT,
        Status.EXPIRED,
    }


def test_an_event_too_close_to_the_end_of_its_window_is_refused_and_left_failed(
    make_events: MakeEvents,
) -> None:
    # Delivery stops EXPIRY_MARGIN before the window closes: a minute inside it is late.
    closing = timezone.now() - ACCEPTANCE_WINDOW + EXPIRY_MARGIN - timedelta(minutes=1)
    (late,) = make_events(1, prefix="late", status=Status.FAILED, event_time=closing)
    make_events(1, prefix="fresh", status=Status.FAILED)

    result = resend(everything())

    assert result.changed == 1
    (refusal,) = result.refused
    assert refusal.pk == late.pk
    assert refusal.reason.startswith("past its 7-day window: the API accepts it until ")
    assert refusal.reason.endswith("delivery stops 5 minutes before that")
    assert ConversionEvent.objects.get(pk=late.pk).status == Status.FAILED


def test_an_event_that_failed_to_build_goes_back_to_be_built_again(
    make_events: MakeEvents, record_failures: None
) -> None:
    (unbuilt,) = make_events(
        1,
        payload=None,
        status=Status.FAILED,
        last_error="LeadConversion.get_user(test:lead-0) raised KeyError",
        last_error_kind=ErrorKind.BUILD,
    )

    resend(everything())
    report = build_pending()

    # The build step took it again (and, its registration being gone, failed it anew).
    assert report.failed == 1
    event = ConversionEvent.objects.get(pk=unbuilt.pk)
    assert event.status == Status.FAILED
    assert event.last_error.startswith("No conversion is registered for test")


def test_events_a_validate_only_delivery_checked_can_be_sent_for_real(
    make_events: MakeEvents,
) -> None:
    make_events(
        2,
        status=Status.CANCELLED,
        attempts=1,
        last_http_status=200,
        last_error="Validated by the API with validate_only (OPENAI_CAPI_VALIDATE_ONLY)",
    )

    assert resend(everything()).changed == 2
    assert set(ConversionEvent.objects.values_list("status", "attempts")) == {
        (Status.PENDING, 0)
    }


def test_a_long_list_of_refusals_names_the_first_and_counts_the_rest(
    make_events: MakeEvents,
) -> None:
    make_events(resending.MAX_LISTED + 5, status=Status.SENT)

    result = resend(everything())

    assert result.refused_count == resending.MAX_LISTED + 5
    assert len(result.refused) == resending.MAX_LISTED
    assert result.refused[0].event_id == "lead-0"


def test_the_write_is_fenced_by_the_status_so_a_workers_outcome_stands(
    make_events: MakeEvents,
) -> None:
    (event,) = make_events(1, status=Status.FAILED)
    real_update = QuerySet.update

    def a_worker_gets_there_first(self: QuerySet[Any], **values: Any) -> int:
        # Between the read and the write, the event is claimed and sent.
        real_update(ConversionEvent.objects.filter(pk=event.pk), status=Status.SENT)
        return real_update(self, **values)

    with mock.patch.object(QuerySet, "update", a_worker_gets_there_first):
        result = resend(everything())

    assert (result.changed, result.moved_on) == (0, 1)
    assert ConversionEvent.objects.get(pk=event.pk).status == Status.SENT


@pytest.mark.parametrize(
    ("dispatch", "enqueued"),
    [
        pytest.param("task", 1, id="task: the task is enqueued after the commit"),
        pytest.param("inline", 0, id="inline: nothing is sent inside the request"),
        pytest.param("none", 0, id="none: the worker command sends"),
    ],
)
def test_a_resend_wakes_delivery_up_only_where_that_sends_outside_the_request(
    make_events: MakeEvents,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
    dispatch: str,
    enqueued: int,
) -> None:
    settings.OPENAI_CAPI_DISPATCH = dispatch
    make_events(3, status=Status.FAILED)

    with (
        mock.patch("django_openai_capi.dispatch.enqueue") as enqueue,
        mock.patch("django_openai_capi.dispatch.send_inline") as send_inline,
        django_capture_on_commit_callbacks(execute=True),
    ):
        resend(everything())

    assert enqueue.call_count == enqueued
    send_inline.assert_not_called()


def test_no_wake_up_when_sending_is_off_or_nothing_changed(
    make_events: MakeEvents, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.OPENAI_CAPI_DISPATCH = "task"
    make_events(1, prefix="failed", status=Status.FAILED)
    make_events(1, prefix="sent", status=Status.SENT)

    with django_capture_on_commit_callbacks() as callbacks:
        resend(ConversionEvent.objects.filter(status=Status.SENT))
        settings.OPENAI_CAPI_SEND_ENABLED = False
        resend(ConversionEvent.objects.filter(status=Status.FAILED))

    assert callbacks == []


def test_cancel_takes_pending_events_only_and_says_who_did_it(
    make_events: MakeEvents,
) -> None:
    make_events(2, prefix="pending", last_error_kind=ErrorKind.SERVER)
    make_events(1, prefix="sent", status=Status.SENT)
    make_events(1, prefix="failed", status=Status.FAILED)

    result = cancel(everything(), by="ada")

    assert result.changed == 2
    assert sorted(str(refusal) for refusal in result.refused) == [
        "failed-0: failed: resend it instead",
        "sent-0: already sent: the API has it",
    ]
    cancelled = ConversionEvent.objects.filter(status=Status.CANCELLED)
    assert cancelled.count() == 2
    assert all(
        e.last_error.startswith("Cancelled in the admin by ada at ")
        and e.last_error_kind == ""
        for e in cancelled
    )


def test_a_cancelled_event_can_be_resent(make_events: MakeEvents) -> None:
    make_events(1)

    cancel(everything())

    assert resend(everything()).changed == 1
    assert ConversionEvent.objects.get().status == Status.PENDING


def test_a_placeholder_recorded_again_under_its_real_id_is_not_resent(
    make_events: MakeEvents,
) -> None:
    # The conversion's get_event_id raised at the first save: the save was recorded
    # as failed under the default id. Fixed, the next save recorded the real event.
    now = timezone.now()
    common = {
        "pixel_id": "test-pixel",
        "event_type": "lead_created",
        "source_label": "testapp.Order:42",
        "event_time": now,
        "expires_at": now + ACCEPTANCE_WINDOW,
    }
    placeholder = ConversionEvent.objects.create(
        event_id="testapp.order:42",
        status=Status.FAILED,
        last_error_kind=ErrorKind.BUILD,
        **common,
    )
    ConversionEvent.objects.create(event_id="order-42", status=Status.SENT, **common)
    # Several events of one object, each with an id of its own, are resent as usual.
    renewal = ConversionEvent.objects.create(
        event_id="order-42-renewal-1", status=Status.FAILED, **common
    )

    result = resend(everything())

    assert result.changed == 1
    assert ConversionEvent.objects.get(pk=renewal.pk).status == Status.PENDING
    (refusal,) = [r for r in result.refused if r.pk == placeholder.pk]
    assert "recorded again under another event id" in refusal.reason
    assert "would send the conversion twice" in refusal.reason
    assert ConversionEvent.objects.get(pk=placeholder.pk).status == Status.FAILED


def test_an_event_that_becomes_failed_meanwhile_is_not_counted_against_the_others(
    make_events: MakeEvents,
) -> None:
    # Read as eligible: a; b is refused as "being sent right now". Meanwhile a worker
    # sends a and fails b. a is reported as moved on, and b stays as the refusal said
    # (before, b was resent after being reported refused, and a went unreported).
    a, b = make_events(2, status=Status.FAILED)
    ConversionEvent.objects.filter(pk=b.pk).update(status=Status.SENDING)
    real_update = QuerySet.update

    def meanwhile(self: QuerySet[Any], **values: Any) -> int:
        real_update(ConversionEvent.objects.filter(pk=a.pk), status=Status.SENT)
        real_update(ConversionEvent.objects.filter(pk=b.pk), status=Status.FAILED)
        return real_update(self, **values)

    with mock.patch.object(QuerySet, "update", meanwhile):
        result = resend(everything())

    assert (result.changed, result.moved_on) == (0, 1)
    assert dict(ConversionEvent.objects.values_list("pk", "status")) == {
        a.pk: Status.SENT,
        b.pk: Status.FAILED,
    }
