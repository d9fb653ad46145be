"""The example project's conversions, run as they ship: what they record, what they send.

Each payload is compared whole with the event the Conversions API docs prescribe for it,
and the order's with the docs' own example request (the same buyer, the same hashes).
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models.signals import post_save
from django.test import Client
from django.test.utils import CaptureQueriesContext

from django_openai_capi import build_pending
from django_openai_capi.api import hash_identifier, spec, validate_event
from django_openai_capi.api.canonical import dumps
from django_openai_capi.models import ConversionEvent
from django_openai_capi.tracking.registry import registry
from example_project.accounts.conversions import RegistrationConversion
from example_project.accounts.models import Registration
from example_project.billing.conversions import SubscriptionConversion
from example_project.billing.models import Subscription
from example_project.shop.conversions import OrderConversion
from example_project.shop.models import Order, OrderLine

pytestmark = pytest.mark.django_db

DOCS = json.loads(
    (Path(__file__).parent / "api" / "vectors" / "doc-examples.json").read_text()
)
DOC_EVENT: dict[str, Any] = DOCS["request_example_current"]["body"]["events"][0]

# The docs' example buyer, whose hashes the docs print (doc-examples.json).
EMAIL_SHA256 = "b4c9a289323b21a01c3e940f150eb9b8c542587f1abfd8f0e1cc1ffc5e475514"
EXTERNAL_ID_SHA256 = "18f69bcd2f9cc9c38195e722b2a5590429840ea5090971d2256e026926e55fa1"
PHONE_SHA256 = "758fbf68945f21c416814c539ab578876c8d98fb69e6da692def92cd52417fe0"

BUYER = {
    "email": "User@Example.com",
    "phone": "+1 (415) 555-2671",
    "customer_external_id": "customer_123",
    "country": "US",
    "city": "San Francisco",
    "postal_code": "94107",
}
# Prices as the models hold them, in dollars; the payloads carry the API's cents.
LINES = [
    ("sku_123", "Starter bundle", 1, Decimal("25.99")),
    ("sku_456", "Refill pack", 3, Decimal("4.50")),
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp_ms(event: ConversionEvent) -> int:
    return (event.event_time - _EPOCH) // timedelta(milliseconds=1)


def place_order(
    lines: list[tuple[str, str, int, Decimal]] = LINES, **fields: Any
) -> Order:
    """As django-oscar's OrderCreator does: the order first, its lines after, one transaction."""
    with transaction.atomic():
        order = Order.objects.create(**{**BUYER, **fields})
        for sku, name, quantity, unit_price in lines:
            OrderLine.objects.create(
                order=order,
                sku=sku,
                name=name,
                quantity=quantity,
                unit_price=unit_price,
            )
    return order


def built_payload() -> tuple[ConversionEvent, dict[str, Any]]:
    """Build the one recorded event and return it with its payload, parsed and checked."""
    report = build_pending()
    assert (report.built, report.total) == (1, 1)
    event = ConversionEvent.objects.get()
    assert event.status == ConversionEvent.Status.PENDING
    assert event.payload is not None
    # Stored as the canonical JSON it will be sent as.
    body: dict[str, Any] = json.loads(event.payload)
    assert event.payload == dumps(body)
    validate_event(body)
    return event, body


def test_the_example_apps_register_their_conversions() -> None:
    assert isinstance(registry.get(Order), OrderConversion)
    assert isinstance(registry.get(Registration), RegistrationConversion)
    assert isinstance(registry.get(Subscription), SubscriptionConversion)
    assert registry.get(OrderLine) is None


# --- shop: order_created ----------------------------------------------------------------


def test_an_order_and_its_lines_record_one_unbuilt_event() -> None:
    with transaction.atomic():
        order = Order.objects.create(**BUYER)
        # Recorded at the order's own save, before any line exists.
        assert ConversionEvent.objects.count() == 1
        for sku, name, quantity, unit_price in LINES:
            OrderLine.objects.create(
                order=order,
                sku=sku,
                name=name,
                quantity=quantity,
                unit_price=unit_price,
            )

    event = ConversionEvent.objects.get()
    assert event.payload is None
    assert event.status == ConversionEvent.Status.PENDING
    assert (event.pixel_id, event.event_type, event.event_id) == (
        "test-pixel",
        "order_created",
        f"shop.order:{order.pk}",
    )
    assert event.source_label == f"shop.Order:{order.pk}"
    order.refresh_from_db()
    assert event.event_time == order.created_at
    # Nothing raw was written: the identity exists only in the order row.
    assert "example.com" not in str(ConversionEvent.objects.values().get())


def test_the_built_order_event_carries_every_line() -> None:
    order = place_order()

    event, body = built_payload()

    assert body == {
        "id": f"shop.order:{order.pk}",
        "type": "order_created",
        "timestamp_ms": timestamp_ms(event),
        "action_source": "web",
        "source_url": "https://shop.example.com/checkout/confirmation",
        "user": {
            "emails_sha256": [EMAIL_SHA256],
            "phone_numbers_sha256": [PHONE_SHA256],
            "external_ids_sha256": [EXTERNAL_ID_SHA256],
            "countries": ["US"],
            "cities": ["San Francisco"],
            "postal_codes": ["94107"],
        },
        "data": {
            "type": "contents",
            "amount": 2599 + 3 * 450,
            "currency": "USD",
            "contents": [
                {
                    "id": "sku_123",
                    "name": "Starter bundle",
                    "quantity": 1,
                    "amount": 2599,
                    "content_type": "product",
                },
                {
                    "id": "sku_456",
                    "name": "Refill pack",
                    "quantity": 3,
                    "amount": 450,
                    "content_type": "product",
                },
            ],
        },
    }
    # The same hashes whichever way they are computed.
    assert body["user"]["emails_sha256"] == [
        hash_identifier("email", "user@example.com")
    ]
    assert body["user"]["phone_numbers_sha256"] == [
        hash_identifier("phone", "14155552671")
    ]


def test_the_order_event_has_the_shape_of_the_docs_example() -> None:
    place_order()

    _, body = built_payload()

    # Every top-level field of the docs' event, but the click id (an admin-made order
    # has none).
    assert set(body) == set(DOC_EVENT) - {"oppref"}
    assert set(body) <= spec.EVENT_FIELDS
    # The docs' buyer fields that an order has; what only a browser knows is absent.
    browser_only = {"obref", "ip_address", "user_agent"}
    assert set(body["user"]) == set(DOC_EVENT["user"]) - browser_only | {
        "phone_numbers_sha256"
    }
    assert body["data"]["type"] == DOC_EVENT["data"]["type"] == "contents"
    assert set(body["data"]) == set(DOC_EVENT["data"])
    for item in body["data"]["contents"]:
        assert set(item) == set(DOC_EVENT["data"]["contents"][0]) | {"amount"}
        assert set(item) <= spec.CONTENT_FIELDS


def test_the_docs_example_order_builds_the_docs_example_event() -> None:
    """The docs' buyer and basket give the docs' event, field for field."""
    order = place_order(
        lines=[("sku_123", "Starter bundle", 1, Decimal("25.99"))], phone=""
    )

    event, body = built_payload()

    expected = copy.deepcopy(DOC_EVENT)
    del expected["oppref"]
    for field in ("obref", "ip_address", "user_agent"):
        del expected["user"][field]
    expected["id"] = f"shop.order:{order.pk}"
    expected["timestamp_ms"] = timestamp_ms(event)
    expected["data"]["contents"][0]["amount"] = 2599  # the docs' item has no amount
    assert body == expected


def test_a_rolled_back_order_records_nothing() -> None:
    class Declined(Exception):
        pass

    try:
        with transaction.atomic():
            order = Order.objects.create(**BUYER)
            OrderLine.objects.create(
                order=order,
                sku="sku_123",
                name="Starter bundle",
                unit_price=Decimal("25.99"),
            )
            assert ConversionEvent.objects.count() == 1
            raise Declined  # the payment was declined after the order was saved
    except Declined:
        pass

    assert not Order.objects.exists()
    assert not ConversionEvent.objects.exists()
    assert build_pending().total == 0


def test_saving_an_order_again_records_nothing_new() -> None:
    order = place_order()

    for _ in range(100):
        order.save()
    Order.objects.get(pk=order.pk).save()

    assert ConversionEvent.objects.count() == 1


def test_a_re_fired_creation_signal_records_nothing_new() -> None:
    order = place_order()
    built_payload()
    payload_before = ConversionEvent.objects.get().payload

    # As a second receiver, or a retried task, might do: should_track says yes again,
    # and the outbox's unique (pixel, type, id) makes it a no-op.
    post_save.send(
        sender=Order, instance=order, created=True, raw=False, using="default"
    )

    event = ConversionEvent.objects.get()
    assert event.payload == payload_before


def test_an_unpaid_order_records_nothing() -> None:
    place_order(is_paid=False)

    assert not ConversionEvent.objects.exists()
    assert build_pending().total == 0


def test_marking_an_order_paid_later_records_nothing() -> None:
    order = place_order(is_paid=False)

    order.is_paid = True
    order.save()

    assert not ConversionEvent.objects.exists()


def test_an_order_with_only_an_email_sends_only_its_hash() -> None:
    place_order(phone="", customer_external_id="", country="", city="", postal_code="")

    _, body = built_payload()

    assert body["user"] == {"emails_sha256": [EMAIL_SHA256]}


def test_the_source_url_follows_the_demo_site_origin(settings: Any) -> None:
    settings.DEMO_SITE_ORIGIN = "https://demo.example.org/"
    place_order()

    _, body = built_payload()

    assert body["source_url"] == "https://demo.example.org/checkout/confirmation"


@pytest.mark.django_db(transaction=True)  # autocommit, as the worker runs
def test_building_many_orders_reads_their_lines_in_one_query() -> None:
    def build_queries(orders: int) -> int:
        for _ in range(orders):
            place_order()
        with CaptureQueriesContext(connection) as queries:
            assert build_pending().built == orders
        return len(queries.captured_queries)

    assert build_queries(1) == build_queries(5)


def test_an_order_placed_in_the_admin_is_built_with_its_inline_lines(
    admin_client: Client,
) -> None:
    """The admin saves the order, then the inline's lines, in one transaction."""
    response = admin_client.post(
        "/admin/shop/order/add/",
        {
            "number": "ORD-ADMIN1",
            "is_paid": "on",
            "currency": "EUR",
            "email": "user@example.com",
            "phone": "",
            "customer_external_id": "customer_123",
            "country": "",
            "city": "",
            "postal_code": "",
            "lines-TOTAL_FORMS": "2",
            "lines-INITIAL_FORMS": "0",
            "lines-MIN_NUM_FORMS": "1",
            "lines-MAX_NUM_FORMS": "1000",
            "lines-0-sku": "sku_123",
            "lines-0-name": "Starter bundle",
            "lines-0-quantity": "2",
            "lines-0-unit_price": "25.99",
            "lines-1-sku": "sku_456",
            "lines-1-name": "Refill pack",
            "lines-1-quantity": "1",
            "lines-1-unit_price": "4.50",
        },
    )
    assert response.status_code == 302, response.content.decode()
    order = Order.objects.get(number="ORD-ADMIN1")
    assert order.lines.count() == 2

    event, body = built_payload()

    assert event.event_id == f"shop.order:{order.pk}"
    assert body["user"] == {
        "emails_sha256": [EMAIL_SHA256],
        "external_ids_sha256": [EXTERNAL_ID_SHA256],
    }
    assert body["data"] == {
        "type": "contents",
        "amount": 2 * 2599 + 450,
        "currency": "EUR",
        "contents": [
            {
                "id": "sku_123",
                "name": "Starter bundle",
                "quantity": 2,
                "amount": 2599,
                "content_type": "product",
            },
            {
                "id": "sku_456",
                "name": "Refill pack",
                "quantity": 1,
                "amount": 450,
                "content_type": "product",
            },
        ],
    }


def test_the_admin_refuses_a_line_priced_finer_than_the_order_currency(
    admin_client: Client,
) -> None:
    """JPY has no decimal places: the form says so, rather than a failed event later."""
    response = admin_client.post(
        "/admin/shop/order/add/",
        {
            "number": "ORD-ADMIN2",
            "is_paid": "on",
            "currency": "JPY",
            "email": "user@example.com",
            "lines-TOTAL_FORMS": "1",
            "lines-INITIAL_FORMS": "0",
            "lines-MIN_NUM_FORMS": "1",
            "lines-MAX_NUM_FORMS": "1000",
            "lines-0-sku": "sku_123",
            "lines-0-name": "Starter bundle",
            "lines-0-quantity": "1",
            "lines-0-unit_price": "8900.50",
        },
    )

    assert response.status_code == 200
    assert response.context["inline_admin_formsets"][0].formset.errors == [
        {"unit_price": ["JPY has 0 decimal places: 8900.50 has more. Round it."]}
    ]
    assert not Order.objects.exists()
    assert not ConversionEvent.objects.exists()


@pytest.mark.parametrize(
    ("currency", "price", "valid"),
    [
        ("JPY", "8900", True),
        ("JPY", "8900.00", True),
        ("JPY", "8900.50", False),
        ("USD", "19.99", True),
        ("GBP", "0.05", True),
    ],
)
def test_a_price_has_at_most_its_currency_decimal_places(
    currency: str, price: str, valid: bool
) -> None:
    subscription = Subscription(
        email="user@example.com",
        plan_id="pro",
        price=Decimal(price),
        currency=currency,
    )
    order = Order(**BUYER, currency=currency)
    line = OrderLine(order=order, sku="s", name="n", unit_price=Decimal(price))

    for obj, field in [(subscription, "price"), (line, "unit_price")]:
        if valid:
            obj.full_clean(exclude=["order"])
        else:
            with pytest.raises(ValidationError) as caught:
                obj.full_clean(exclude=["order"])
            assert caught.value.message_dict == {
                field: [f"{currency} has 0 decimal places: {price} has more. Round it."]
            }


def test_a_price_is_not_checked_against_a_missing_currency_or_order() -> None:
    # Each missing value is the field's own error, reported once.
    subscription = Subscription(email="user@example.com", plan_id="pro", currency="")
    with pytest.raises(ValidationError) as caught:
        subscription.full_clean()
    assert set(caught.value.message_dict) == {"price", "currency"}
    OrderLine(sku="s", name="n", unit_price=Decimal("1.005")).clean()


def test_a_negative_price_is_refused() -> None:
    line = OrderLine(sku="s", name="n", unit_price=Decimal("-1.00"))
    with pytest.raises(ValidationError) as caught:
        line.full_clean(exclude=["order"])
    assert set(caught.value.message_dict) == {"unit_price"}


@pytest.mark.parametrize("phone", ["12345", "+1 415 555 2671 ext 9", "call me"])
def test_the_order_form_refuses_a_phone_the_api_would(phone: str) -> None:
    order = Order(**{**BUYER, "phone": phone})

    with pytest.raises(ValidationError) as caught:
        order.full_clean()

    assert set(caught.value.message_dict) == {"phone"}
    assert phone not in str(caught.value)


# --- accounts: registration_completed ---------------------------------------------------


def test_a_registration_sends_registration_completed() -> None:
    registration = Registration.objects.create(email="User@Example.com", username="ada")
    assert ConversionEvent.objects.get().payload is None

    event, body = built_payload()

    assert body == {
        "id": f"accounts.registration:{registration.pk}",
        "type": "registration_completed",
        "timestamp_ms": timestamp_ms(event),
        "action_source": "web",
        "source_url": "https://shop.example.com/accounts/welcome",
        "user": {
            "emails_sha256": [EMAIL_SHA256],
            "external_ids_sha256": [
                hash_identifier("external_id", str(registration.external_id))
            ],
        },
        "data": {"type": "customer_action"},
    }
    registration.refresh_from_db()
    assert event.event_time == registration.created_at


def test_saving_a_registration_again_records_nothing_new() -> None:
    registration = Registration.objects.create(email="user@example.com", username="ada")

    registration.email = "ada@example.com"
    registration.save()

    assert ConversionEvent.objects.count() == 1


# --- billing: subscription_created ------------------------------------------------------


def test_a_subscription_sends_subscription_created_with_its_plan() -> None:
    subscription = Subscription.objects.create(
        email="user@example.com",
        plan_id="pro_monthly",
        price=Decimal("19.99"),
        currency="USD",
    )
    assert ConversionEvent.objects.get().payload is None

    event, body = built_payload()

    assert body == {
        "id": f"billing.subscription:{subscription.pk}",
        "type": "subscription_created",
        "timestamp_ms": timestamp_ms(event),
        "action_source": "web",
        "source_url": "https://shop.example.com/billing/subscribed",
        "user": {"emails_sha256": [EMAIL_SHA256]},
        "data": {
            "type": "plan_enrollment",
            "amount": 1999,
            "currency": "USD",
            "plan_id": "pro_monthly",
        },
    }
    subscription.refresh_from_db()
    assert event.event_time == subscription.created_at


def test_a_subscription_in_yen_sends_whole_yen() -> None:
    Subscription.objects.create(
        email="user@example.com",
        plan_id="pro_yearly",
        price=Decimal("8900"),
        currency="JPY",
    )

    _, body = built_payload()

    assert body["data"] == {
        "type": "plan_enrollment",
        "amount": 8900,
        "currency": "JPY",
        "plan_id": "pro_yearly",
    }


def test_an_exception_in_get_data_leaves_the_order_saved_and_a_failed_event(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.OPENAI_CAPI_RAISE_ERRORS = False  # production: never break the checkout

    def broken(self: OrderConversion, obj: Order) -> dict[str, object]:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(OrderConversion, "get_data", broken)
    order = place_order()
    build_pending()

    assert Order.objects.filter(pk=order.pk).exists()
    event = ConversionEvent.objects.get()
    assert event.status == ConversionEvent.Status.FAILED
    assert event.last_error == (
        f"OrderConversion.get_data(shop.Order:{order.pk}) raised ZeroDivisionError: division by zero"
    )


def test_the_demo_data_is_recorded_once_and_delivered_to_the_fake(
    settings: Any,
) -> None:
    from django.core.management import call_command

    from django_openai_capi.delivery import send_pending
    from django_openai_capi.testing import FakeConversionsAPI

    out = StringIO()
    call_command("demo_data", stdout=out)
    call_command("demo_data", stdout=out)

    assert out.getvalue().splitlines() == [
        "Demo data: 5 new conversions recorded.",
        "Conversion events: 5 pending",
        "Demo data: 0 new conversions recorded.",
        "Conversion events: 5 pending",
    ]
    with FakeConversionsAPI(api_key="test-key", pixels=["test-pixel"]) as fake:
        settings.OPENAI_CAPI_ENDPOINT = fake.url
        report = send_pending()
    assert (report.built, report.sent, report.failed) == (5, 5, 0)
    assert sorted(key.name for key in fake.accepted) == [
        "order_created",
        "order_created",
        "order_created",
        "registration_completed",
        "subscription_created",
    ]
