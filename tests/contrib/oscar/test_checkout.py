"""A new Oscar shop delivers its orders with no conversions.py of its own.

A customer fills the basket and goes through Oscar's own checkout views; the order is
committed, and only then is its event built (lines included) and delivered to the fake
Conversions API over HTTP.
"""

from __future__ import annotations

import hashlib

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from django_openai_capi.delivery import send_pending
from django_openai_capi.models import ConversionEvent
from django_openai_capi.testing import FakeConversionsAPI
from tests.contrib.oscar.shop import (
    SHIPPING,
    add_to_basket,
    checkout,
    countries,
    product,
)

pytestmark = pytest.mark.django_db(transaction=True)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_a_guest_checkout_is_delivered_as_one_order_created(
    client: Client, fake: FakeConversionsAPI
) -> None:
    countries()
    book = product("The Difference Engine", "12.99")
    mug = product("Analytical mug", "7.50")
    add_to_basket(client, book, 2)
    add_to_basket(client, mug, 1)

    order = checkout(client, guest_email="Ada@Example.com")
    # Oscar's confirmation page reports the purchase to the pixel under the same id.
    page = client.get(reverse("checkout:thank-you")).content.decode()
    assert f'"event_id":"order.order:{order.pk}"' in page.replace(" ", "")

    # Recorded with the order, built only after the commit, when it is sent.
    assert ConversionEvent.objects.get().payload is None
    assert send_pending().sent == 1
    (event,) = fake.accepted.values()
    assert event["type"] == "order_created"
    assert event["id"] == f"order.order:{order.pk}"
    assert event["data"] == {
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
    user = event["user"]
    assert user["emails_sha256"] == [sha256("ada@example.com")]
    assert user["first_names_sha256"] == [sha256("ada")]
    assert user["last_names_sha256"] == [sha256("lovelace")]
    assert user["phone_numbers_sha256"] == [sha256("442079460958")]
    assert user["cities"] == ["London"]
    assert user["regions"] == ["Greater London"]
    assert user["postal_codes"] == ["SW1Y 4JH"]
    assert user["countries"] == ["GB"]
    # A guest has no account, so no external id.
    assert "external_ids_sha256" not in user


def test_a_signed_in_customer_with_another_billing_address(
    client: Client, fake: FakeConversionsAPI
) -> None:
    countries()
    customer = get_user_model().objects.create_user(
        username="grace", email="grace@example.com", password="secret-password-1"
    )
    client.force_login(customer)
    lamp = product("Desk lamp", "40.00")
    add_to_basket(client, lamp, 1)

    order = checkout(
        client,
        billing={
            "first_name": "Grace",
            "last_name": "Hopper",
            "line1": "1 Rue de Rivoli",
            "line4": "Paris",
            "postcode": "75001",
            "country": "FR",
        },
        shipping={**SHIPPING, "first_name": "Grace", "last_name": "Hopper"},
    )

    call_command("openai_capi_send", verbosity=0)
    (event,) = fake.accepted.values()
    assert event["id"] == f"order.order:{order.pk}"
    user = event["user"]
    assert user["emails_sha256"] == [sha256("grace@example.com")]
    assert user["external_ids_sha256"] == [sha256(str(customer.pk))]
    # The same name on both addresses is sent once; the places of both are sent.
    assert user["first_names_sha256"] == [sha256("grace")]
    assert user["last_names_sha256"] == [sha256("hopper")]
    assert user["cities"] == ["Paris", "London"]
    assert user["postal_codes"] == ["75001", "SW1Y 4JH"]
    assert user["countries"] == ["FR", "GB"]
    # Only the shipping address has a phone number in Oscar.
    assert user["phone_numbers_sha256"] == [sha256("442079460958")]
    assert event["data"]["amount"] == 4000
