"""Saving a registered model records one unbuilt event, in the host's transaction."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core import serializers
from django.db import transaction
from django.utils import timezone

from django_openai_capi import ModelConversion
from django_openai_capi.exceptions import ConversionError
from django_openai_capi.models import ConversionEvent, ErrorKind
from django_openai_capi.tracking.recording import Origin, record_save
from django_openai_capi.tracking.registry import registry
from tests.conftest import Swap
from tests.testapp.models import Note, Order, RushOrder, Signup

pytestmark = pytest.mark.django_db

Status = ConversionEvent.Status


def test_creating_an_order_records_one_pending_event_to_build_later() -> None:
    before = timezone.now()
    order = Order.objects.create(number="A-1")

    event = ConversionEvent.objects.get()
    assert event.status == Status.PENDING
    assert (event.pixel_id, event.event_type) == ("test-pixel", "order_created")
    assert event.event_id == f"testapp.order:{order.pk}"
    assert event.source_label == f"testapp.Order:{order.pk}"
    assert event.payload is None and not event.is_built
    assert before <= event.event_time <= timezone.now()
    assert event.expires_at == event.event_time + timedelta(days=7)
    assert event.attempts == 0


def test_saving_the_same_order_again_records_nothing_new(swap_conversion: Swap) -> None:
    class EverySave(ModelConversion[Order]):
        event_type = "order_created"

        def should_track(self, obj: Order, created: bool) -> bool:
            return True  # every save asks: the unique key must keep it to one event

    swap_conversion(Order, EverySave)
    order = Order.objects.create(number="A-1")
    for _ in range(100):
        order.save()
    assert ConversionEvent.objects.count() == 1


def test_a_second_signal_for_the_same_object_records_nothing_new() -> None:
    order = Order.objects.create(number="A-1")
    conversion = registry.get(Order)
    assert conversion is not None
    assert record_save(conversion, order, created=True, using="default") is False
    assert ConversionEvent.objects.count() == 1


def test_should_track_decides_and_by_default_only_the_first_save_counts() -> None:
    Order.objects.create(number="unpaid", is_paid=False)  # testapp: paid orders only
    assert not ConversionEvent.objects.exists()
    signup = Signup.objects.create(email="a@example.com")  # default should_track
    signup.save()
    assert ConversionEvent.objects.get().event_id == f"testapp.signup:{signup.pk}"


def test_a_rolled_back_transaction_leaves_no_event() -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        Order.objects.create(number="A-1")
        raise RuntimeError("payment declined")
    assert not Order.objects.exists()
    assert not ConversionEvent.objects.exists()


def test_a_rolled_back_savepoint_takes_its_event_with_it() -> None:
    with transaction.atomic():
        Order.objects.create(number="kept")
        with pytest.raises(RuntimeError), transaction.atomic():
            Order.objects.create(number="undone")
            raise RuntimeError
    assert [e.source_label for e in ConversionEvent.objects.all()] == [
        f"testapp.Order:{Order.objects.get().pk}"
    ]


def test_raw_saves_from_fixtures_are_ignored() -> None:
    data = '[{"model": "testapp.order", "pk": 7, "fields": {"number": "F-7"}}]'
    for obj in serializers.deserialize("json", data):
        obj.save()
    assert Order.objects.filter(pk=7).exists()
    assert not ConversionEvent.objects.exists()


def test_saves_through_a_proxy_are_tracked_as_the_concrete_model() -> None:
    order = RushOrder.objects.create(number="R-1")
    assert ConversionEvent.objects.get().source_label == f"testapp.Order:{order.pk}"


def test_models_without_a_conversion_record_nothing() -> None:
    Note.objects.create(text="hello")
    assert not ConversionEvent.objects.exists()


def test_a_uuid_primary_key_makes_the_default_event_id() -> None:
    signup = Signup.objects.create(email="a@example.com")
    assert ConversionEvent.objects.get().event_id == f"testapp.signup:{signup.pk}"


def test_identity_hooks_override_the_defaults(swap_conversion: Swap) -> None:
    placed = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)

    class Custom(ModelConversion[Order]):
        event_type = "custom"
        custom_event_name = "quote_requested"
        pixel_id = "pixel-b"

        def get_event_id(self, obj: Order) -> str:
            return f"order-{obj.number}"

        def get_event_time(self, obj: Order) -> datetime:
            return placed

    swap_conversion(Order, Custom)
    Order.objects.create(number="A-1")
    event = ConversionEvent.objects.get()
    assert (event.pixel_id, event.event_type, event.event_id) == (
        "pixel-b",
        "custom",
        "order-A-1",
    )
    assert event.event_time == placed


def test_get_pixel_id_can_route_each_object_to_its_own_pixel(
    swap_conversion: Swap,
) -> None:
    class PerBrand(ModelConversion[Order]):
        event_type = "order_created"

        def get_pixel_id(self, obj: Order) -> str:
            return f"pixel-{obj.currency.lower()}"

    swap_conversion(Order, PerBrand)
    Order.objects.create(number="1", currency="EUR")
    Order.objects.create(number="2", currency="USD")
    assert sorted(ConversionEvent.objects.values_list("pixel_id", flat=True)) == [
        "pixel-eur",
        "pixel-usd",
    ]


class Explodes(ModelConversion[Order]):
    event_type = "order_created"

    def should_track(self, obj: Order, created: bool) -> bool:
        raise ZeroDivisionError("division by zero")


def test_with_raise_errors_a_broken_hook_fails_the_save(swap_conversion: Swap) -> None:
    swap_conversion(Order, Explodes)
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        Order.objects.create(number="A-1")
    assert not Order.objects.exists()


def test_under_debug_a_broken_hook_still_keeps_the_order(
    swap_conversion: Swap, settings: Any
) -> None:
    # A staging server: startproject's DEBUG = True, OPENAI_CAPI_RAISE_ERRORS unset.
    settings.DEBUG = True
    del settings.OPENAI_CAPI_RAISE_ERRORS
    swap_conversion(Order, Explodes)
    with transaction.atomic():
        order = Order.objects.create(number="A-1")
    assert Order.objects.filter(pk=order.pk).exists()
    assert ConversionEvent.objects.get().status == Status.FAILED


@pytest.mark.usefixtures("record_failures")
def test_a_broken_hook_never_breaks_the_save_and_is_recorded_as_failed(
    swap_conversion: Swap, caplog: pytest.LogCaptureFixture
) -> None:
    swap_conversion(Order, Explodes)
    with caplog.at_level(logging.ERROR, logger="django_openai_capi.tracking"):
        order = Order.objects.create(number="A-1")

    assert Order.objects.filter(pk=order.pk).exists()
    event = ConversionEvent.objects.get()
    assert event.status == Status.FAILED
    assert event.last_error_kind == ErrorKind.BUILD
    assert event.event_id == f"testapp.order:{order.pk}"
    assert event.last_error == (
        f"Explodes could not identify the event of testapp.Order:{order.pk}: "
        + "ZeroDivisionError: division by zero"
    )
    assert event.last_error in caplog.text and "Traceback" in caplog.text


@pytest.mark.usefixtures("record_failures")
def test_a_missing_pixel_is_recorded_not_raised(
    swap_conversion: Swap, settings: Any
) -> None:
    settings.OPENAI_CAPI_PIXEL_ID = None
    Order.objects.create(number="A-1")
    event = ConversionEvent.objects.get()
    assert (event.status, event.pixel_id) == (Status.FAILED, "")
    assert "No pixel given and OPENAI_CAPI_PIXEL_ID is not set" in event.last_error


@pytest.mark.parametrize(
    ("hook", "value", "message"),
    [
        (
            "get_event_id",
            "",
            "event_id from Odd.get_event_id() is blank; event_id must be a non-empty "
            + "string of at most 255 characters",
        ),
        (
            "get_event_id",
            "x" * 256,
            "event_id from Odd.get_event_id() is 256 characters long, more than the 255 that fit",
        ),
        (
            "get_event_id",
            42,
            "event_id from Odd.get_event_id() is of type int, not a string",
        ),
        (
            "get_pixel_id",
            "p" * 65,
            "pixel_id from Odd.get_pixel_id() is 65 characters long, more than the 64 "
            + "that fit; pixel_id must be a Pixel ID: a non-empty string of at most 64 "
            + "characters without whitespace",
        ),
        (
            "get_event_time",
            datetime(2026, 11, 20),
            "event_time from Odd.get_event_time() is a naive datetime; event_time must "
            + "be a timezone-aware datetime",
        ),
        (
            "get_event_time",
            "2026-11-20",
            "event_time from Odd.get_event_time() is of type str, not a datetime",
        ),
    ],
)
def test_an_identity_the_outbox_cannot_hold_is_refused_by_name(
    swap_conversion: Swap, hook: str, value: object, message: str
) -> None:
    conversion = type(
        "Odd",
        (ModelConversion,),
        {"event_type": "order_created", hook: lambda self, obj: value},
    )
    swap_conversion(Order, conversion)
    with pytest.raises(ConversionError) as caught:
        Order.objects.create(number="A-1")
    assert message in str(caught.value)


def test_a_save_through_a_proxy_and_one_through_the_model_are_one_event(
    swap_conversion: Swap,
) -> None:
    class EverySave(ModelConversion[Order]):
        event_type = "order_created"

        def should_track(self, obj: Order, created: bool) -> bool:
            return True

    swap_conversion(Order, EverySave)
    order = RushOrder.objects.create(number="R-1")
    Order.objects.get(pk=order.pk).save()
    assert ConversionEvent.objects.get().event_id == f"testapp.order:{order.pk}"


def test_a_multi_table_child_is_tracked_as_its_registered_parent() -> None:
    from tests.testapp.models import GiftOrder

    gift = GiftOrder.objects.create(number="G-1", message="Happy birthday")
    event = ConversionEvent.objects.get()
    assert event.event_id == f"testapp.order:{gift.pk}"
    assert event.source_label == f"testapp.Order:{gift.pk}"


@pytest.mark.usefixtures("record_failures")
def test_a_save_after_a_failed_identification_records_the_real_event(
    swap_conversion: Swap,
) -> None:
    class FlakyCurrency(ModelConversion[Order]):
        event_type = "order_created"

        def should_track(self, obj: Order, created: bool) -> bool:
            return {"USD": True}[obj.currency]  # a KeyError for anything else

    swap_conversion(Order, FlakyCurrency)
    order = Order.objects.create(number="A-1", currency="usd")
    assert ConversionEvent.objects.get().status == Status.FAILED

    order.currency = "USD"
    order.save()  # fixed: the failure must not keep the real event out
    event = ConversionEvent.objects.get()
    assert (event.status, event.last_error, event.last_error_kind) == (
        Status.PENDING,
        "",
        "",
    )
    assert event.event_id == f"testapp.order:{order.pk}"


@pytest.mark.usefixtures("record_failures")
def test_a_primary_key_too_long_for_the_source_label_is_refused_by_name(
    swap_conversion: Swap,
) -> None:
    from tests.testapp.models import Coupon

    class CouponUsed(ModelConversion[Coupon]):
        event_type = "lead_created"

        def get_event_id(self, obj: Coupon) -> str:
            return "coupon-event"

    swap_conversion(Coupon, CouponUsed)
    Coupon.objects.create(code="c" * 260)
    event = ConversionEvent.objects.get()
    assert event.status == Status.FAILED
    assert (
        "source_label from the primary key of testapp.Coupon is 275 characters long, "
        + "more than the 255 that fit"
    ) in event.last_error
    assert len(event.source_label) == 255


def test_the_hooks_an_error_would_name_are_looked_up_only_for_an_error(
    monkeypatch: pytest.MonkeyPatch, swap_conversion: Swap
) -> None:
    looked_up: list[object] = []
    real = Origin.of

    def of(conversion: Any) -> Origin:
        looked_up.append(conversion)
        return real(conversion)

    monkeypatch.setattr(Origin, "of", of)
    Order.objects.create(number="A-1")
    assert ConversionEvent.objects.count() == 1
    assert looked_up == []

    conversion = swap_conversion(Order, Ahead)
    with pytest.raises(ConversionError, match="from Ahead.get_event_time"):
        Order.objects.create(number="A-2")
    assert looked_up == [conversion]


class Ahead(ModelConversion[Order]):
    event_type = "order_created"

    def get_event_time(self, obj: Order) -> datetime:
        return timezone.now() + timedelta(hours=2)


def test_an_event_time_far_in_the_future_is_refused(swap_conversion: Swap) -> None:
    swap_conversion(Order, Ahead)
    with pytest.raises(
        ConversionError,
        match="event_time from Ahead.get_event_time\\(\\) is 120 minutes in the future; "
        + "the API accepts at most 10",
    ):
        Order.objects.create(number="A-1")


def test_an_event_time_past_the_window_is_recorded_as_expired(
    swap_conversion: Swap,
) -> None:
    class Imported(ModelConversion[Order]):
        event_type = "order_created"

        def get_event_time(self, obj: Order) -> datetime:
            return datetime(2020, 1, 1, tzinfo=UTC)

    swap_conversion(Order, Imported)
    Order.objects.create(number="A-1")
    event = ConversionEvent.objects.get()
    assert (event.status, event.last_error_kind) == (Status.EXPIRED, ErrorKind.EXPIRED)
    assert event.last_error.startswith(
        "Recorded after its 7-day window had closed (event time 2020-01-01 00:00"
    )


class OutboxElsewhere:
    """A router that keeps the outbox out of the database the host writes to."""

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        return False if app_label == "django_openai_capi" else None

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return "default"


def test_with_the_outbox_routed_elsewhere_the_event_is_written_after_the_commit(
    settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.DATABASE_ROUTERS = [f"{__name__}.OutboxElsewhere"]
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        transaction.atomic(),
    ):
        Order.objects.create(number="A-1")
        assert not ConversionEvent.objects.exists()
    assert len(callbacks) == 1
    assert ConversionEvent.objects.count() == 1


def test_the_event_time_defaults_to_the_date_field_when_it_holds_a_datetime() -> None:
    from datetime import date

    class Dated(ModelConversion[Order]):
        event_type = "order_created"
        date_field = "placed_at"

    conversion = Dated(Order)
    placed = timezone.now() - timedelta(days=2)
    order = Order(number="D-1")

    order.placed_at = placed  # type: ignore[attr-defined]
    assert conversion.get_event_time(order) == placed
    order.placed_at = date(2026, 1, 1)  # type: ignore[attr-defined]
    assert conversion.get_event_time(order) > timezone.now() - timedelta(seconds=5)
