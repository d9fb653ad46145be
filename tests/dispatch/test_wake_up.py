"""One wake-up per committed transaction that recorded events, and none otherwise."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from django_openai_capi import signals
from django_openai_capi.models import ConversionEvent
from django_openai_capi.tasks import send_pending_events
from tests.dispatch.conftest import pending_wake_ups, record_lead
from tests.testapp.models import Order

pytestmark = pytest.mark.django_db(transaction=True)


class Boom(Exception):
    pass


def test_a_transaction_wakes_delivery_once_however_many_events_it_records(
    task_dispatch: Any,
) -> None:
    with transaction.atomic():
        for i in range(5):
            record_lead(f"lead-{i}")
        Order.objects.create(number="A-1", email="buyer@example.com")
        assert pending_wake_ups() == 1
        assert task_dispatch.results == []  # not before the commit
    assert ConversionEvent.objects.count() == 6
    [result] = task_dispatch.results
    assert result.task.func is send_pending_events.func
    assert result.kwargs == {"using": "default"}
    assert result.status == "READY"


def test_each_committed_transaction_wakes_delivery(task_dispatch: Any) -> None:
    for i in range(3):
        with transaction.atomic():
            record_lead(f"lead-{i}a")
            record_lead(f"lead-{i}b")
    assert len(task_dispatch.results) == 3


def test_a_rolled_back_transaction_wakes_nothing(task_dispatch: Any) -> None:
    with pytest.raises(Boom), transaction.atomic():
        record_lead("lead-1")
        raise Boom
    assert task_dispatch.results == []
    assert ConversionEvent.objects.count() == 0


def test_the_transaction_after_a_rollback_wakes_delivery(task_dispatch: Any) -> None:
    # A flag of "already scheduled" would survive the rollback and skip this one.
    with pytest.raises(Boom), transaction.atomic():
        record_lead("lead-1")
        raise Boom
    with transaction.atomic():
        record_lead("lead-2")
    assert len(task_dispatch.results) == 1


def test_set_rollback_wakes_nothing(task_dispatch: Any) -> None:
    with transaction.atomic():
        record_lead("lead-1")
        transaction.set_rollback(True)
    with transaction.atomic():
        record_lead("lead-2")
    assert len(task_dispatch.results) == 1


def test_events_after_a_rolled_back_savepoint_still_wake_delivery(
    task_dispatch: Any,
) -> None:
    with transaction.atomic():
        with pytest.raises(Boom), transaction.atomic():
            record_lead("lead-1")  # its wake-up goes with the savepoint
            raise Boom
        assert pending_wake_ups() == 0
        record_lead("lead-2")
        assert pending_wake_ups() == 1
    assert len(task_dispatch.results) == 1
    assert list(ConversionEvent.objects.values_list("event_id", flat=True)) == [
        "lead-2"
    ]


def test_a_rolled_back_savepoint_keeps_the_wake_up_of_the_events_before_it(
    task_dispatch: Any,
) -> None:
    with transaction.atomic():
        record_lead("lead-1")
        with pytest.raises(Boom), transaction.atomic():
            record_lead("lead-2")
            raise Boom
        assert pending_wake_ups() == 1
    assert len(task_dispatch.results) == 1


def test_a_released_savepoint_shares_the_transactions_wake_up(
    task_dispatch: Any,
) -> None:
    with transaction.atomic():
        with transaction.atomic():
            record_lead("lead-1")
        record_lead("lead-2")
        assert pending_wake_ups() == 1
    assert len(task_dispatch.results) == 1


def test_in_autocommit_each_event_wakes_delivery_at_once(task_dispatch: Any) -> None:
    record_lead("lead-1")
    assert len(task_dispatch.results) == 1
    record_lead("lead-2")
    assert len(task_dispatch.results) == 2


def test_an_event_recorded_already_wakes_nothing(task_dispatch: Any) -> None:
    assert record_lead("lead-1") is True
    assert record_lead("lead-1") is False
    assert len(task_dispatch.results) == 1


def test_an_event_that_cannot_be_sent_wakes_nothing(
    task_dispatch: Any, settings: Any
) -> None:
    settings.OPENAI_CAPI_RAISE_ERRORS = False
    record_lead("")  # recorded as failed: a blank event id
    assert list(ConversionEvent.objects.values_list("status", flat=True)) == ["failed"]
    assert task_dispatch.results == []


@pytest.mark.parametrize(
    "overrides",
    [{"OPENAI_CAPI_DISPATCH": "none"}, {"OPENAI_CAPI_SEND_ENABLED": False}],
    ids=["dispatch-none", "sending-disabled"],
)
def test_nothing_is_scheduled(
    task_dispatch: Any, settings: Any, overrides: dict[str, object]
) -> None:
    for name, value in overrides.items():
        setattr(settings, name, value)
    with transaction.atomic():
        record_lead("lead-1")
        assert pending_wake_ups() == 0
    record_lead("lead-2")
    assert task_dispatch.results == []
    assert ConversionEvent.objects.count() == 2


def test_a_wake_up_follows_the_setting_at_commit_time(
    task_dispatch: Any, settings: Any
) -> None:
    with transaction.atomic():
        record_lead("lead-1")
        settings.OPENAI_CAPI_DISPATCH = "none"
    assert task_dispatch.results == []


def test_every_recorded_event_is_signalled(settings: Any) -> None:
    settings.OPENAI_CAPI_RAISE_ERRORS = False
    received: list[tuple[str, str, str]] = []

    def receiver(
        sender: Any, event: ConversionEvent, using: str, **kwargs: Any
    ) -> None:
        received.append((event.event_type, event.status, using))

    signals.event_recorded.connect(receiver, sender=ConversionEvent)
    try:
        with transaction.atomic():
            record_lead("lead-1")
            record_lead("lead-1")  # not recorded twice, so not signalled twice
            Order.objects.create(number="A-1")
        record_lead("")  # recorded as failed
    finally:
        signals.event_recorded.disconnect(receiver, sender=ConversionEvent)
    assert received == [
        ("lead_created", "pending", "default"),
        ("order_created", "pending", "default"),
        ("lead_created", "failed", "default"),
    ]
