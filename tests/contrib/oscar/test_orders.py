"""Orders placed with Oscar's ``OrderCreator``, as every checkout places them.

Each test places an order with Oscar's own code (``oscar.test.factories.create_order``
calls ``OrderCreator().place_order``) and reads the event its commit recorded, as
built for sending.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from oscar.apps.order.exceptions import UnableToPlaceOrder
from oscar.apps.order.utils import OrderCreator
from oscar.apps.partner.strategy import Default
from oscar.core.loading import get_model
from oscar.test.factories import (
    BillingAddressFactory,
    CountryFactory,
    OptionFactory,
    ShippingAddressFactory,
    create_order,
    create_product,
    create_stockrecord,
)

from django_openai_capi.models import ConversionEvent
from django_openai_capi.tracking import build_pending
from django_openai_capi.tracking.registry import registry

pytestmark = pytest.mark.django_db

Basket = get_model("basket", "Basket")
Order = get_model("order", "Order")
Status = ConversionEvent.Status


def basket_of(*lines: tuple[Any, int], currency: str = "GBP", **options: Any) -> Any:
    """A basket holding *lines* of (product, quantity), priced in *currency*."""
    basket = Basket.objects.create()
    basket.strategy = Default()
    for item, quantity in lines:
        basket.add_product(item, quantity, options=options.get(item.title))
    return basket


def for_sale(
    title: str,
    price: str,
    *,
    currency: str = "GBP",
    sku: str | None = None,
    **fields: Any,
) -> Any:
    item = create_product(title=title, **fields)
    create_stockrecord(
        item, price=Decimal(price), currency=currency, num_in_stock=10, partner_sku=sku
    )
    return item


def event_of(order: Any) -> dict[str, Any]:
    """The order's event as it will be sent (built now, as the worker builds it)."""
    build_pending()
    event = ConversionEvent.objects.get(source_label=f"order.Order:{order.pk}")
    assert event.payload is not None
    payload: dict[str, Any] = json.loads(event.payload)
    return payload


@pytest.fixture
def countries() -> None:
    CountryFactory(iso_3166_1_a2="GB", name="United Kingdom")
    CountryFactory(iso_3166_1_a2="FR", name="France")


def test_a_guest_order_with_no_address_is_identified_by_its_email() -> None:
    order = create_order(
        basket=basket_of((for_sale("Tea", "3.20"), 1)), guest_email="guest@example.com"
    )

    user = event_of(order)["user"]

    assert set(user) == {"emails_sha256"}


def test_an_order_with_a_shipping_address_and_no_billing_address(
    countries: None,
) -> None:
    shipping = ShippingAddressFactory(
        first_name="Ada",
        last_name="Lovelace",
        line4="London",
        state="",
        postcode="SW1Y 4JH",
        country_id="GB",
        phone_number="",
    )
    customer = get_user_model().objects.create_user(
        username="ada", email="ada@example.com"
    )
    order = create_order(
        basket=basket_of((for_sale("Tea", "3.20"), 1)),
        user=customer,
        shipping_address=shipping,
    )

    user = event_of(order)["user"]

    # No region and no phone on the address: neither is sent, nor made up.
    assert set(user) == {
        "emails_sha256",
        "external_ids_sha256",
        "first_names_sha256",
        "last_names_sha256",
        "cities",
        "postal_codes",
        "countries",
    }
    assert user["countries"] == ["GB"]


def test_addresses_that_agree_are_sent_once(countries: None) -> None:
    fields = {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "line4": "London",
        "postcode": "SW1Y 4JH",
        "country_id": "GB",
    }
    order = create_order(
        basket=basket_of((for_sale("Tea", "3.20"), 1)),
        shipping_address=ShippingAddressFactory(**fields),
        billing_address=BillingAddressFactory(**fields),
    )

    user = event_of(order)["user"]

    assert user["cities"] == ["London"]
    assert len(user["first_names_sha256"]) == 1


def test_a_line_whose_product_was_deleted_is_named_by_its_upc_then_its_sku() -> None:
    with_upc = for_sale("Kettle", "25.00", upc="5012345678900", sku="KET-1")
    without_upc = for_sale("Teapot", "18.00", sku="POT-1")
    order = create_order(basket=basket_of((with_upc, 1), (without_upc, 2)))

    with_upc.delete()
    without_upc.delete()

    contents = event_of(order)["data"]["contents"]
    assert [item["id"] for item in contents] == ["5012345678900", "POT-1"]
    assert [item["name"] for item in contents] == ["Kettle", "Teapot"]


def test_a_zero_priced_line_is_sent_with_amount_zero() -> None:
    free = for_sale("Free sample", "0.00")
    paid = for_sale("Coffee", "9.99")
    order = create_order(basket=basket_of((free, 1), (paid, 1)))

    data = event_of(order)["data"]

    assert data["amount"] == 999
    assert [item["amount"] for item in data["contents"]] == [0, 999]


@pytest.mark.parametrize(
    ("currency", "price", "minor"),
    [("JPY", "8900", 8900), ("KWD", "12.35", 12350), ("EUR", "12.35", 1235)],
)
def test_amounts_are_in_the_minor_unit_of_the_orders_currency(
    currency: str, price: str, minor: int
) -> None:
    item = for_sale("Tea", price, currency=currency)
    order = create_order(basket=basket_of((item, 2), currency=currency))

    data = event_of(order)["data"]

    assert data["currency"] == currency
    assert data["amount"] == 2 * minor
    assert data["contents"][0]["amount"] == minor


def test_an_amount_the_currency_cannot_hold_fails_the_event_naming_the_field(
    record_failures: None,
) -> None:
    # A yen price with sen: rounding it would report revenue the shop did not take.
    item = for_sale("Tea", "99.50", currency="JPY")
    order = create_order(basket=basket_of((item, 1), currency="JPY"))

    build_pending()

    event = ConversionEvent.objects.get(source_label=f"order.Order:{order.pk}")
    assert event.status == Status.FAILED
    assert "data.amount" in event.last_error
    assert "more than 0 decimal places" in event.last_error


def test_the_chosen_options_are_the_items_variant_dict() -> None:
    size = OptionFactory(name="Size", code="size", type="text")
    colours = OptionFactory(name="Colours", code="colours", type="multi_select")
    note = OptionFactory(name="Note", code="note", type="text")
    shirt = for_sale("Shirt", "20.00")
    basket = basket_of(
        (shirt, 1),
        Shirt=[
            {"option": size, "value": "Large"},
            {"option": colours, "value": ["red", "blue"]},
            {"option": note, "value": ""},
        ],
    )
    order = create_order(basket=basket)

    (item,) = event_of(order)["data"]["contents"]

    # An option left empty is no choice at all.
    assert item["variant_dict"] == {"size": "Large", "colours": "red, blue"}


def test_a_child_products_line_names_its_parent_as_group_id() -> None:
    parent = create_product(title="T-shirt", structure="parent")
    child = for_sale("T-shirt, medium", "15.00", parent=parent, structure="child")
    order = create_order(basket=basket_of((child, 1)))

    (item,) = event_of(order)["data"]["contents"]

    assert item["id"] == str(child.pk)
    assert item["group_id"] == str(parent.pk)


def test_saving_the_order_again_makes_no_second_event() -> None:
    order = create_order(basket=basket_of((for_sale("Tea", "3.20"), 1)))

    order.status = "Shipped"
    order.save()
    Order.objects.get(pk=order.pk).save()

    assert ConversionEvent.objects.count() == 1


def test_an_order_that_fails_to_be_placed_leaves_no_event() -> None:
    class FailingCreator(OrderCreator):  # type: ignore[misc]
        # A shop's hook for its own per-line records, failing after the order and
        # its first line were saved: Oscar's transaction rolls them all back.
        def create_additional_line_models(self, *args: Any) -> None:
            raise UnableToPlaceOrder("gift wrap unavailable")

    basket = basket_of((for_sale("Tea", "3.20"), 1))
    with pytest.raises(UnableToPlaceOrder):
        FailingCreator().place_order(
            basket=basket,
            total=_total(basket),
            shipping_method=_free(),
            shipping_charge=_free().calculate(basket),
        )

    assert not Order.objects.exists()
    assert not ConversionEvent.objects.exists()


def _free() -> Any:
    from oscar.apps.shipping.methods import Free

    return Free()


def _total(basket: Any) -> Any:
    from oscar.apps.checkout.calculators import OrderTotalCalculator

    return OrderTotalCalculator().calculate(basket, _free().calculate(basket))


def test_a_line_with_no_unit_price_has_no_item_amount() -> None:
    # Oscar's unit prices may be empty (orders imported from another system). A
    # line total divided by the quantity is not always the unit price (discounts),
    # so the item goes without an amount rather than with a guess.
    order = create_order(basket=basket_of((for_sale("Tea", "3.20"), 3)))
    order.lines.update(unit_price_incl_tax=None)

    (item,) = event_of(order)["data"]["contents"]

    assert "amount" not in item
    assert item["quantity"] == 3


def test_orders_placed_before_the_app_was_installed_can_be_backfilled() -> None:
    with registry.override(Order, None):  # the shop before it added the app
        order = create_order(basket=basket_of((for_sale("Tea", "3.20"), 1)))
    assert not ConversionEvent.objects.exists()

    call_command(
        "openai_capi_backfill", "--since", "2000-01-01", "--model", "order.Order"
    )
    call_command(
        "openai_capi_backfill", "--since", "2000-01-01", "--model", "order.Order"
    )

    event = ConversionEvent.objects.get()
    assert event.event_id == f"order.order:{order.pk}"
    # When the order was placed, not when the backfill ran.
    assert event.event_time == order.date_placed
    assert event_of(order)["data"]["amount"] == 320


def test_building_many_orders_takes_no_query_per_order() -> None:
    def queries_to_build(orders: int) -> int:
        for _ in range(orders):
            create_order(basket=basket_of((for_sale("Tea", "3.20"), 2)))
        with CaptureQueriesContext(connection) as queries:
            assert build_pending().built == orders
        # Inside the test's transaction, the core puts each event's hooks in a
        # savepoint of their own (a worker, outside one, does not): not a read.
        return sum(
            not query["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))
            for query in queries.captured_queries
        )

    assert queries_to_build(1) == queries_to_build(5)
