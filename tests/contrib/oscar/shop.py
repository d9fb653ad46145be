"""A customer of the test shop: products from Oscar's factories, Oscar's checkout views.

Every step goes through Oscar's own URLs with the Django test client, as a browser
would: the basket, the gateway (guest or signed in), the shipping address, the
shipping method, payment, preview and "Place order".
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.test import Client, RequestFactory
from django.urls import reverse
from oscar.apps.checkout.utils import CheckoutSessionData
from oscar.core.loading import get_model
from oscar.test.factories import CountryFactory, create_product, create_stockrecord

Order = get_model("order", "Order")

SHIPPING = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "line1": "12 St James's Square",
    "line4": "London",
    "state": "Greater London",
    "postcode": "SW1Y 4JH",
    "country": "GB",
    "phone_number": "+44 20 7946 0958",
}


def product(title: str, price: str, *, stock: int = 10, **fields: Any) -> Any:
    """A product for sale, in stock, at *price* incl. tax (Oscar's default: no tax)."""
    item = create_product(title=title, **fields)
    create_stockrecord(item, price=Decimal(price), num_in_stock=stock)
    return item


def countries() -> None:
    CountryFactory(iso_3166_1_a2="GB", name="United Kingdom", is_shipping_country=True)
    CountryFactory(iso_3166_1_a2="FR", name="France", is_shipping_country=True)


def add_to_basket(client: Client, item: Any, quantity: int) -> None:
    response = client.post(
        reverse("basket:add", kwargs={"pk": item.pk}), {"quantity": quantity}
    )
    assert response.status_code == 302, response


def bill_to(client: Client, fields: dict[str, str]) -> None:
    """What a shop's billing form does on the payment step: Oscar's session API.

    Oscar's default payment view asks for no billing address; shops add a form that
    stores one with ``CheckoutSessionData.bill_to_new_address``, as this does.
    """
    request = RequestFactory().get("/")
    request.session = client.session
    # Stored as Oscar's own address views store one: the country by its code.
    stored = {key: value for key, value in fields.items() if key != "country"}
    CheckoutSessionData(request).bill_to_new_address(
        {**stored, "country_id": fields["country"]}
    )
    request.session.save()


def checkout(
    client: Client,
    *,
    guest_email: str | None = None,
    shipping: dict[str, str] = SHIPPING,
    billing: dict[str, str] | None = None,
) -> Any:
    """Go through Oscar's checkout with what is in the basket; the order placed."""
    if guest_email is not None:
        response = client.post(
            reverse("checkout:index"), {"username": guest_email, "options": "anonymous"}
        )
        assert response.status_code == 302, _errors(response)
    response = client.post(reverse("checkout:shipping-address"), shipping)
    assert response.status_code == 302, _errors(response)
    # One shipping method (Oscar's default, free): the step passes itself.
    response = client.get(reverse("checkout:shipping-method"))
    assert response["Location"] == reverse("checkout:payment-method")
    response = client.get(reverse("checkout:payment-method"))
    assert response["Location"] == reverse("checkout:payment-details")
    assert client.get(reverse("checkout:payment-details")).status_code == 200
    if billing is not None:
        bill_to(client, billing)
    response = client.post(reverse("checkout:preview"))
    assert response.status_code == 200, _errors(response)
    response = client.post(reverse("checkout:preview"), {"action": "place_order"})
    assert response["Location"] == reverse("checkout:thank-you"), _errors(response)
    return Order.objects.get()


def _errors(response: Any) -> str:
    context = getattr(response, "context", None) or {}
    form = context.get("form") if hasattr(context, "get") else None
    return f"{response.status_code}: {getattr(form, 'errors', '')} {context.get('error', '') if hasattr(context, 'get') else ''}"
