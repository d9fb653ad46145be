"""The example project's storefront, through Django's test client: no browser needed.

Land with ?oppref=, place an order, see the confirmation: the order's event carries the
oppref without a line of attribution code in the views, and the confirmation page
reports the same event, with the same id, from the pixel.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client

from django_openai_capi import RequestContext, build_pending
from django_openai_capi.models import ConversionEvent
from django_openai_capi.tracking.registry import registry
from example_project.shop.models import Order

pytestmark = pytest.mark.django_db

OPPREF = "op_2f9c-Example_click.id"


@pytest.fixture
def client() -> Client:
    return Client(HTTP_USER_AGENT="Mozilla/5.0 (storefront test)")


def place_order(client: Client, **fields: Any) -> Any:
    form = {"email": "ada@example.com", "sku": "SKU-TEA", "quantity": "2", **fields}
    return client.post("/checkout/", form)


def test_an_order_after_landing_with_oppref_is_sent_with_it(client: Client) -> None:
    landing = client.get(f"/?oppref={OPPREF}")
    assert landing.status_code == 200
    assert client.get("/checkout/").status_code == 200

    response = place_order(client)

    assert response.status_code == 302
    assert response["Location"] == "/checkout/confirmation/"
    order = Order.objects.get()
    build_pending()
    event = json.loads(ConversionEvent.objects.get().payload or "")
    assert event["oppref"] == OPPREF
    assert event["user"]["ip_address"] == "127.0.0.1"
    assert event["user"]["user_agent"] == "Mozilla/5.0 (storefront test)"
    assert event["id"] == f"shop.order:{order.pk}"
    # Two teas at Decimal("12.50"): the API's cents, converted by the library.
    assert event["data"]["amount"] == 2500
    assert event["data"]["contents"][0]["amount"] == 1250


def test_the_pages_show_prices_as_the_models_hold_them(client: Client) -> None:
    assert "Green tea: $12.50" in client.get("/checkout/").content.decode()
    place_order(client)

    page = client.get("/checkout/confirmation/").content.decode()

    assert "2 × Green tea at 12.50 USD" in page
    assert '<strong id="order-total">25.00 USD</strong>' in page


def test_the_confirmation_reports_the_same_event_from_the_pixel(
    client: Client,
) -> None:
    client.get(f"/?oppref={OPPREF}")
    place_order(client)

    page = client.get("/checkout/confirmation/").content.decode()

    build_pending()
    server = json.loads(ConversionEvent.objects.get().payload or "")
    [arguments] = re.findall(r'oaiq\("measure", (.*?)\);', page)
    name, data, options = json.loads(f"[{arguments}]")
    assert (name, options) == (server["type"], {"event_id": server["id"]})
    assert data == server["data"]
    # And the page loads the pixel for the same Pixel ID the server sends to.
    assert 'oaiq("init", {"pixelId": "test-pixel"});' in page


def test_every_page_loads_the_pixel(client: Client) -> None:
    for path in ["/", "/checkout/"]:
        assert (
            "https://bzrcdn.openai.com/sdk/oaiq.min.js"
            in client.get(path).content.decode()
        )


def test_an_invalid_form_places_no_order(client: Client) -> None:
    response = place_order(client, email="not an email", quantity="0")
    assert response.status_code == 200
    assert "Enter a valid email address." in response.content.decode()
    assert not Order.objects.exists()


def test_the_confirmation_shows_only_the_visitors_own_order(client: Client) -> None:
    place_order(Client())  # someone else's
    response = client.get("/checkout/confirmation/")
    assert (response.status_code, response["Location"]) == (302, "/checkout/")


def test_an_order_entered_in_the_admin_is_not_given_the_staff_members_context() -> None:
    conversion = registry.get(Order)
    assert conversion is not None
    order = Order(email="ada@example.com")
    staff = RequestContext(
        oppref="op_staff", source_url="http://testserver/admin/shop/order/add/"
    )
    buyer = RequestContext(oppref=OPPREF, source_url="http://testserver/checkout/")

    assert conversion.get_request_context(order, staff) is None
    assert conversion.get_request_context(order, buyer) == buyer
