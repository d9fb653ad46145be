"""``OrderConversion``: an Oscar order as an ``order_created`` event.

Importing this module registers nothing (the app's ``ready()`` does), so a project
can subclass the class, override a hook, and name the subclass in
``OPENAI_CAPI_OSCAR_CONVERSION``.

Oscar's ``OrderCreator.place_order`` saves the order first and its lines after it,
in one transaction. Only ``should_track`` runs inside that save; the payload is built
after the commit, from the committed order, so every line is in it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.db.models import Prefetch, QuerySet

from django_openai_capi.api.money import to_minor_units
from django_openai_capi.tracking.conversion import ModelConversion

# Oscar is untyped: its models are Any here.
Order = Any
Line = Any
Address = Any


class OrderConversion(ModelConversion[Any]):
    """An order placed through Oscar's checkout, with every line as a content item."""

    event_type = "order_created"
    # When the order was placed: the event's time, and what the backfill selects by.
    date_field = "date_placed"
    #: ``content_type`` of every item.
    content_type = "product"

    # Inside the order's save.

    def should_track(self, obj: Order, created: bool) -> bool:
        # Oscar places an order once its payment is taken (or authorised), so its
        # creation is the purchase. A later save (a status change, a note) is not.
        return created

    # After the commit, when the event is built.

    def get_queryset(self) -> QuerySet[Any]:
        # Events are built in bulk: one query for every order's lines (with their
        # products and options), not one per order.
        line_model = self.model._meta.get_field("lines").related_model
        lines = line_model._default_manager.select_related("product").prefetch_related(
            "attributes"
        )
        return (
            super()
            .get_queryset()
            .select_related("user", "billing_address", "shipping_address")
            .prefetch_related(Prefetch("lines", queryset=lines.order_by("pk")))
        )

    def get_user(self, obj: Order) -> Mapping[str, object]:
        """The buyer: the order's email, the user's pk and both addresses.

        A value the two addresses share is sent once; where they differ, both are
        sent, as lists. The library hashes the email, phone, names and user id, and
        sends the city, region, postal code and country raw, as the API asks.
        """
        addresses = [
            address
            for address in (obj.billing_address, obj.shipping_address)
            if address is not None
        ]
        identity: dict[str, object] = {
            "email": obj.email,
            "external_id": None if obj.user_id is None else str(obj.user_id),
        }
        for key, read in _ADDRESS_FIELDS.items():
            identity[key] = _one_or_many(read(address) for address in addresses)
        return {key: value for key, value in identity.items() if value}

    def get_data(self, obj: Order) -> Mapping[str, object]:
        currency: str = obj.currency
        return {
            "amount": to_minor_units(obj.total_incl_tax, currency, field="data.amount"),
            "currency": currency,
            "contents": [
                self.get_content(line, currency, f"data.contents[{index}]")
                for index, line in enumerate(obj.lines.all())
            ],
        }

    # Not hooks of ModelConversion: the parts of get_data a subclass may change.

    def get_content(self, line: Line, currency: str, path: str) -> dict[str, object]:
        """One line as a content item, in the API's field names only.

        ``amount`` is the unit price incl. tax (before discounts, as Oscar records
        it), as OpenAI's own plugin advises for item amounts; the discounts are in
        the order's total. *path* names the item in an error.
        """
        item: dict[str, object] = {
            "id": self.get_content_id(line),
            "name": line.title,
            "quantity": line.quantity,
            "content_type": self.content_type,
        }
        if line.unit_price_incl_tax is not None:
            item["amount"] = to_minor_units(
                line.unit_price_incl_tax, currency, field=f"{path}.amount"
            )
        product = line.product
        if product is not None and product.parent_id is not None:
            # A child product (a size, a colour) of a parent product.
            item["group_id"] = str(product.parent_id)
        variant = self.get_variant_dict(line)
        if variant:
            item["variant_dict"] = variant
        return {key: value for key, value in item.items() if value not in ("", None)}

    def get_content_id(self, line: Line) -> str | None:
        """The product's id; the line's UPC, then its partner SKU, when it is gone.

        The product id is what a storefront's pixel sends for the same product
        (``contents_viewed``, ``items_added``), so the events match. A deleted
        product leaves the line with no id: its UPC (the product's own code, the
        same whichever partner sold it) is the next best name for it, then the SKU
        under which that partner sold it.
        """
        if line.product_id is not None:
            return str(line.product_id)
        upc: str | None = line.upc
        sku: str = line.partner_sku
        return upc or sku or None

    def get_variant_dict(self, line: Line) -> dict[str, str]:
        """The options chosen for the line (Oscar's line attributes), as text.

        Keyed by the option's code; a multiple choice is joined with ", ", as Oscar's
        own ``Line.description`` shows it. An option left empty is not one.
        """
        variant = {}
        for attribute in line.attributes.all():
            value = attribute.value
            text = (
                ", ".join(str(v) for v in value)
                if isinstance(value, list)
                else ("" if value is None else str(value))
            )
            if text.strip():
                variant[attribute.type] = text
        return variant


def _one_or_many(values: Iterable[object]) -> str | list[str] | None:
    unique = list(dict.fromkeys(str(value) for value in values if value))
    if not unique:
        return None
    return unique[0] if len(unique) == 1 else unique


def _phone(address: Address) -> object:
    # Only shipping addresses have one; PhoneNumberField's str() is E.164.
    return getattr(address, "phone_number", None)


_ADDRESS_FIELDS: dict[str, Callable[[Address], object]] = {
    "first_name": lambda address: address.first_name,
    "last_name": lambda address: address.last_name,
    "phone": _phone,
    "city": lambda address: address.line4,
    "region": lambda address: address.state,
    "postal_code": lambda address: address.postcode,
    # Oscar's Country is keyed by its ISO 3166-1 alpha-2 code: no query for it.
    "country": lambda address: address.country_id,
}
