"""``manage.py demo_data``: a few orders, sign-ups and subscriptions to deliver.

Each one is saved the way the site would save it (an order and its lines in one
transaction), so each becomes a conversion event exactly as in production. Run it
again and it adds nothing: the demo's objects have fixed names.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import Count

from django_openai_capi.models import ConversionEvent
from example_project.accounts.models import Registration
from example_project.billing.models import Subscription
from example_project.shop.models import Order, OrderLine

# Prices in dollars, as the storefront's catalogue has them.
ORDERS = [
    (
        "DEMO-1001",
        "ada@example.com",
        "US",
        [("SKU-TEA", "Green tea", 2, Decimal("12.50"))],
    ),
    (
        "DEMO-1002",
        "grace@example.com",
        "GB",
        [
            ("SKU-MUG", "Mug", 1, Decimal("9.00")),
            ("SKU-TEA", "Green tea", 1, Decimal("12.50")),
        ],
    ),
    (
        "DEMO-1003",
        "linus@example.com",
        "FI",
        [("SKU-POT", "Teapot", 1, Decimal("45.00"))],
    ),
]


class Command(BaseCommand):
    help = "Create demo orders, registrations and subscriptions (once)."

    def handle(self, *args: Any, **options: Any) -> None:
        created = 0
        for number, email, country, lines in ORDERS:
            if Order.objects.filter(number=number).exists():
                continue
            with transaction.atomic():
                order = Order.objects.create(
                    number=number, email=email, country=country, currency="USD"
                )
                OrderLine.objects.bulk_create(
                    OrderLine(
                        order=order,
                        sku=sku,
                        name=name,
                        quantity=qty,
                        unit_price=price,
                    )
                    for sku, name, qty, price in lines
                )
            created += 1
        if not Registration.objects.filter(username="demo-ada").exists():
            Registration.objects.create(email="ada@example.com", username="demo-ada")
            created += 1
        if not Subscription.objects.filter(email="grace@example.com").exists():
            Subscription.objects.create(
                email="grace@example.com",
                plan_id="pro_monthly",
                price=Decimal("19.99"),
                currency="USD",
            )
            created += 1
        self.stdout.write(f"Demo data: {created} new conversions recorded.")
        counts = (
            ConversionEvent.objects.values_list("status")
            .annotate(count=Count("id"))
            .order_by("status")
        )
        self.stdout.write(
            "Conversion events: "
            + (", ".join(f"{count} {status}" for status, count in counts) or "none")
        )
