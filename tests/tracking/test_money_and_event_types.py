"""Decimals, Money and ``EventType`` through a model save and ``track()``, to the row."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction

from django_openai_capi import EventType, ModelConversion, build_pending, track
from django_openai_capi.models import ConversionEvent, ErrorKind
from django_openai_capi.signals import event_recorded
from tests.conftest import Swap
from tests.testapp.models import Order, OrderLine

pytestmark = pytest.mark.django_db

Status = ConversionEvent.Status


class Money:
    """py-moneyed's ``Money`` as far as the builder looks: ``amount``, ``currency.code``."""

    class Currency:
        def __init__(self, code: str) -> None:
            self.code = code

    def __init__(self, amount: str, currency: str) -> None:
        self.amount = Decimal(amount)
        self.currency = self.Currency(currency)


class DecimalOrderConversion(ModelConversion[Order]):
    """Prices as a DecimalField holds them: Decimals in major units."""

    event_type = EventType.ORDER_CREATED

    def get_data(self, obj: Order) -> Mapping[str, object]:
        lines = list(obj.lines.order_by("id"))
        # What a DecimalField(decimal_places=2) returns: Decimal("10.00").
        prices = [Decimal(line.unit_price_cents).scaleb(-2) for line in lines]
        return {
            "amount": sum(
                (line.quantity * price for line, price in zip(lines, prices)),
                Decimal("0.00"),
            ),
            "currency": obj.currency,
            "contents": [
                {"id": line.sku, "quantity": line.quantity, "amount": price}
                for line, price in zip(lines, prices)
            ],
        }


@pytest.fixture
def recorded_types() -> Iterator[list[object]]:
    """The ``event_type`` of each row as recorded, in memory: read back from the
    database, it would be a str whatever was assigned. Sent on commit."""
    seen: list[object] = []

    def receive(sender: object, event: ConversionEvent, **kwargs: object) -> None:
        seen.append(event.event_type)

    event_recorded.connect(receive)
    yield seen
    event_recorded.disconnect(receive)


def payload(event: ConversionEvent) -> dict[str, Any]:
    assert event.payload is not None
    body: dict[str, Any] = json.loads(event.payload)
    return body


def test_a_decimal_total_on_a_model_is_stored_as_minor_units(
    swap_conversion: Swap,
    recorded_types: list[object],
    django_capture_on_commit_callbacks: Any,
) -> None:
    swap_conversion(Order, DecimalOrderConversion)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        order = Order.objects.create(number="A-1", currency="usd")
        OrderLine.objects.create(
            order=order, sku="a", name="A", quantity=2, unit_price_cents=1999
        )
        OrderLine.objects.create(
            order=order, sku="b", name="B", quantity=1, unit_price_cents=500
        )

    assert build_pending().built == 1

    assert recorded_types == ["order_created"]
    assert type(recorded_types[0]) is str
    event = ConversionEvent.objects.get()
    assert event.status == Status.PENDING
    assert payload(event)["data"] == {
        "type": "contents",
        "amount": 4498,
        "currency": "USD",
        "contents": [
            {"id": "a", "quantity": 2, "amount": 1999},
            {"id": "b", "quantity": 1, "amount": 500},
        ],
    }
    # Byte for byte what ints in minor units make.
    assert '"amount":4498,' in event.payload  # type: ignore[operator]


def test_an_amount_in_yen_is_converted_by_its_exponent(swap_conversion: Swap) -> None:
    swap_conversion(Order, DecimalOrderConversion)
    with transaction.atomic():
        order = Order.objects.create(number="A-1", currency="JPY")
        OrderLine.objects.create(
            order=order, sku="a", name="A", quantity=1, unit_price_cents=890000
        )
    build_pending()
    assert payload(ConversionEvent.objects.get())["data"]["amount"] == 8900


def test_a_decimal_with_too_many_places_fails_the_event_naming_the_field(
    swap_conversion: Swap, record_failures: None
) -> None:
    swap_conversion(Order, DecimalOrderConversion)
    with transaction.atomic():
        order = Order.objects.create(number="A-1", currency="JPY")
        OrderLine.objects.create(
            order=order, sku="a", name="A", quantity=1, unit_price_cents=1999
        )
    build_pending()
    event = ConversionEvent.objects.get()
    assert event.status == Status.FAILED
    assert event.last_error_kind == ErrorKind.INVALID
    assert "data.contents[0].amount: 19.99 JPY has more than 0 decimal places" in (
        event.last_error
    )


def test_track_takes_a_member_and_a_decimal(
    recorded_types: list[object], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        assert track(
            EventType.SUBSCRIPTION_CREATED,
            event_id="sub-1",
            data={"amount": Decimal("49.90"), "currency": "eur", "plan_id": "pro"},
        )
    assert recorded_types == ["subscription_created"]
    assert type(recorded_types[0]) is str
    event = ConversionEvent.objects.get()
    body = payload(event)
    assert body["type"] == "subscription_created"
    assert body["data"] == {
        "type": "plan_enrollment",
        "amount": 4990,
        "currency": "EUR",
        "plan_id": "pro",
    }


def test_track_takes_a_money() -> None:
    assert track(
        "order_created",
        event_id="o-1",
        data={"amount": Money("25.99", "USD"), "contents": [{"id": "a"}]},
    )
    data = payload(ConversionEvent.objects.get())["data"]
    assert (data["amount"], data["currency"]) == (2599, "USD")


def test_a_float_fails_the_tracked_event_with_the_options(
    record_failures: None,
) -> None:
    assert track(EventType.ORDER_CREATED, event_id="o-1", data={"amount": 25.99})
    event = ConversionEvent.objects.get()
    assert event.status == Status.FAILED
    assert event.last_error.startswith("track('order_created') could not record")
    assert "a float cannot hold money exactly" in event.last_error
    assert "EventType" not in event.last_error


def test_track_raises_with_the_plain_name(settings: Any) -> None:
    settings.OPENAI_CAPI_RAISE_ERRORS = True
    with pytest.raises(Exception, match="must be 'mobile_app' for app_opened"):
        track(EventType.APP_OPENED, event_id="a-1", action_source="web")
    assert not ConversionEvent.objects.exists()


def test_a_class_made_with_a_member_keeps_its_plain_string() -> None:
    assert type(DecimalOrderConversion.event_type) is str
    assert DecimalOrderConversion.event_type == "order_created"


def test_a_member_set_after_the_class_was_made_is_made_plain_by_register(
    swap_conversion: Swap,
    recorded_types: list[object],
    django_capture_on_commit_callbacks: Any,
) -> None:
    class Later(ModelConversion[Order]):
        event_type = "lead_created"

    Later.event_type = EventType.ORDER_CREATED
    swap_conversion(Order, Later)
    assert type(Later.event_type) is str and Later.event_type == "order_created"

    with django_capture_on_commit_callbacks(execute=True):
        Order.objects.create(number="A-1")
    assert recorded_types == ["order_created"]
    assert type(recorded_types[0]) is str
