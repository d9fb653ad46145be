"""A paid order is an ``order_created`` conversion, with every line as a content item.

Found by django_openai_capi's autodiscovery, as ``admin.py`` is by the admin's.
``should_track``, the event id and its time are decided inside the order's save; the
rest (``get_user``, ``get_data``, ``get_source_url``) runs after the commit, on the
committed order, so the lines saved after the order are in the payload. The visitor's
``oppref``, ``obref``, IP and user agent come from the storefront's checkout request,
kept by the middleware: no hook here reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from django.db.models import Prefetch, QuerySet
from django.urls import reverse

from django_openai_capi import EventType, ModelConversion, RequestContext, register
from example_project.demo_site import page_url
from example_project.shop.models import Order, OrderLine


@register(Order)
class OrderConversion(ModelConversion[Order]):
    event_type = EventType.ORDER_CREATED
    # When the order was placed: the event's time (not when this process got to
    # saving it), and what openai_capi_backfill selects orders by.
    date_field = "created_at"

    # The event id is the default, "shop.order:<pk>": stable across saves and resends,
    # and what the confirmation page would give the browser pixel as its event_id, so
    # that the API counts the purchase once whichever side reports it first.

    def should_track(self, obj: Order, created: bool) -> bool:
        # Only the first save: marking an order paid later, editing or re-saving it
        # is not a new purchase. An unpaid order is not a conversion at all.
        return created and obj.is_paid

    def get_request_context(
        self, obj: Order, context: RequestContext
    ) -> RequestContext | None:
        # An order a member of staff enters in the admin was not placed by the browser
        # that sent the request: its IP, user agent and click id are the staff
        # member's, and would be sent as the buyer's.
        if context.source_url and urlsplit(context.source_url).path.startswith(
            reverse("admin:index")
        ):
            return None
        return context

    def get_queryset(self) -> QuerySet[Order]:
        # Events are built in bulk from this queryset: one query for the lines of
        # every order, not one per order.
        return (
            super()
            .get_queryset()
            .prefetch_related(
                Prefetch("lines", queryset=OrderLine.objects.order_by("pk"))
            )
        )

    def get_user(self, obj: Order) -> Mapping[str, object]:
        # Raw values: the library normalises and hashes email, phone and customer id,
        # and sends the geography raw, as the API prescribes.
        identity = {
            "email": obj.email,
            "phone": obj.phone,
            "external_id": obj.customer_external_id,
            "country": obj.country,
            "city": obj.city,
            "postal_code": obj.postal_code,
        }
        return {key: value for key, value in identity.items() if value}

    def get_data(self, obj: Order) -> Mapping[str, object]:
        # Decimals in major units, as the models hold them: the library converts them
        # to the API's minor units by the currency's exponent (12.50 USD is 1250).
        return {
            "amount": obj.total,
            "currency": obj.currency,
            "contents": [
                {
                    "id": line.sku,
                    "name": line.name,
                    "quantity": line.quantity,
                    # The unit price, as OpenAI's own plugin advises for item amounts.
                    "amount": line.unit_price,
                    "content_type": "product",
                }
                for line in obj.lines.all()
            ],
        }

    def get_source_url(self, obj: Order) -> str:
        # The page, not the order: no order number in the URL (the docs warn against
        # order identifiers in query parameters), and the page is all the API asks for.
        return page_url("/checkout/confirmation")
