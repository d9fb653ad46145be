"""A shop that forked Oscar's order app: its own Order is what is tracked.

The fork is the one ``manage.py oscar_fork_app order`` generates (shop/order), with a
field of its own on ``Order``; these settings install it in place of Oscar's app. The
contrib app finds the fork through Oscar's ``get_model`` and registers its conversion
for it, with no line of configuration about the fork.
"""

from __future__ import annotations

from typing import Any

import oscar.apps.order.models
import pytest
from django.core.management import call_command
from django.test import Client
from oscar.apps.checkout.calculators import OrderTotalCalculator
from oscar.apps.order.utils import OrderCreator
from oscar.apps.partner.strategy import Default
from oscar.apps.shipping.methods import Free
from oscar.core.loading import get_model

from django_openai_capi.contrib.oscar.conversions import OrderConversion
from django_openai_capi.delivery import send_pending
from django_openai_capi.models import ConversionEvent
from django_openai_capi.testing import FakeConversionsAPI
from django_openai_capi.tracking.registry import registry
from tests.contrib.oscar.shop import add_to_basket, checkout, countries, product
from tests.contrib.oscar_fork.referral import ReferralOrderConversion
from tests.contrib.oscar_fork.shop.order.models import Order as ForkedOrder

Basket = get_model("basket", "Basket")


def place_order(*lines: tuple[Any, int], **fields: Any) -> Any:
    """An order for *lines* of (product, quantity), placed by Oscar's OrderCreator.

    *fields* are the order's own (``guest_email``, the fork's ``referral_code``):
    ``place_order`` passes them on to the new order, as a shop's checkout does.
    """
    basket = Basket.objects.create()
    basket.strategy = Default()
    for item, quantity in lines:
        basket.add_product(item, quantity)
    shipping = Free()
    charge = shipping.calculate(basket)
    return OrderCreator().place_order(
        basket=basket,
        total=OrderTotalCalculator().calculate(basket, charge),
        shipping_method=shipping,
        shipping_charge=charge,
        **fields,
    )


def test_the_fork_is_the_order_model_and_the_contribs_conversion_tracks_it() -> None:
    assert get_model("order", "Order") is ForkedOrder
    # Oscar declares no Order of its own once the fork has declared one.
    assert not hasattr(oscar.apps.order.models, "Order")

    conversion = registry.get(ForkedOrder)

    assert type(conversion) is OrderConversion
    assert conversion.model is ForkedOrder
    call_command("check")  # raises on any error


@pytest.mark.django_db(transaction=True)
def test_an_order_placed_on_the_fork_is_delivered_as_one_order_created(
    fake: FakeConversionsAPI,
) -> None:
    book = product("The Difference Engine", "12.99")
    mug = product("Analytical mug", "7.50")

    order = place_order(
        (book, 2), (mug, 1), guest_email="ada@example.com", referral_code="PARTNER-7"
    )

    assert type(order) is ForkedOrder
    assert ForkedOrder.objects.get().referral_code == "PARTNER-7"
    # Recorded when the order was saved, before its lines were: built only after the
    # commit, when it is sent.
    event = ConversionEvent.objects.get()
    assert event.source_label == f"order.Order:{order.pk}"
    assert event.payload is None
    assert send_pending().sent == 1
    (sent,) = fake.accepted.values()
    assert sent["type"] == "order_created"
    assert sent["id"] == f"order.order:{order.pk}"
    assert sent["data"] == {
        "type": "contents",
        "amount": 3348,
        "currency": "GBP",
        "contents": [
            {
                "id": str(book.pk),
                "name": "The Difference Engine",
                "quantity": 2,
                "content_type": "product",
                "amount": 1299,
            },
            {
                "id": str(mug.pk),
                "name": "Analytical mug",
                "quantity": 1,
                "content_type": "product",
                "amount": 750,
            },
        ],
    }


@pytest.mark.django_db(transaction=True)
def test_a_checkout_through_oscars_views_on_the_fork_is_delivered(
    client: Client, fake: FakeConversionsAPI
) -> None:
    countries()
    lamp = product("Desk lamp", "40.00")
    add_to_basket(client, lamp, 1)

    order = checkout(client, guest_email="grace@example.com")

    assert type(order) is ForkedOrder
    call_command("openai_capi_send", verbosity=0)
    (sent,) = fake.accepted.values()
    assert sent["id"] == f"order.order:{order.pk}"
    assert sent["data"]["amount"] == 4000
    assert [item["id"] for item in sent["data"]["contents"]] == [str(lamp.pk)]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("referral_code", "events"),
    [("", 1), ("PARTNER-7", 1), ("TEST-checkout", 0), ("test-refunds", 0)],
)
def test_a_subclass_named_by_the_setting_reads_the_forks_field(
    settings: Any, restart: Any, referral_code: str, events: int
) -> None:
    settings.OPENAI_CAPI_OSCAR_CONVERSION = (
        "tests.contrib.oscar_fork.referral.ReferralOrderConversion"
    )
    restart()
    assert type(registry.get(ForkedOrder)) is ReferralOrderConversion

    place_order((product("Tea", "3.20"), 1), referral_code=referral_code)

    assert ConversionEvent.objects.count() == events
