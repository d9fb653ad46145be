"""Orders as a typical shop stores them: the order row first, its lines after it.

That order of saves (django-oscar's ``OrderCreator`` does the same) is why the
conversion's payload is built after the commit: when the order's ``post_save`` fires,
its lines do not exist yet.
"""

from __future__ import annotations

import secrets
from decimal import Decimal

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from example_project.commerce import (
    CURRENCY_CHOICES,
    money_field,
    validate_amount,
    validate_phone,
)


def new_order_number() -> str:
    """A short random order number, so that the admin need not invent one."""
    return f"ORD-{secrets.token_hex(4).upper()}"


class Order(models.Model):
    """A placed order. Paid when placed (payment first, as most checkouts do)."""

    number = models.CharField(max_length=32, unique=True, default=new_order_number)
    # Identity of the buyer, stored raw as a shop would; the conversion hashes the
    # email, phone and customer id before anything is written to the outbox.
    email = models.EmailField()
    phone = models.CharField(
        max_length=32,
        blank=True,
        validators=[validate_phone],
        help_text="With the country code, e.g. +1 415 555 2671.",
    )
    customer_external_id = models.CharField(
        "customer ID",
        max_length=64,
        blank=True,
        help_text="The shop's own stable customer id (never an email address).",
    )
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES, default="USD")
    is_paid = models.BooleanField(
        "paid",
        default=True,
        help_text="Only an order paid when it is placed is reported as order_created.",
    )
    # Where the order was placed from; sent raw, as the API wants geography.
    country = models.CharField(
        max_length=2,
        blank=True,
        validators=[
            RegexValidator(r"^[A-Za-z]{2}$", "Enter a two-letter ISO 3166-1 code.")
        ],
        help_text="Two-letter ISO 3166-1 code, e.g. US.",
    )
    city = models.CharField(max_length=128, blank=True)
    postal_code = models.CharField(
        max_length=32,
        blank=True,
        validators=[
            RegexValidator(
                r"^[A-Za-z0-9 -]*$", "Use only letters, digits, spaces and hyphens."
            )
        ],
    )
    # Not editable: the event's timestamp is taken from it, and an order back-dated
    # past the API's 7-day window could only ever expire.
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.number

    @property
    def total(self) -> Decimal:
        """What the order is worth, in major units of its currency."""
        return sum((line.total for line in self.lines.all()), Decimal(0))


class OrderLine(models.Model):
    """One product of an order, priced in major units of the order's currency."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    sku = models.CharField("SKU", max_length=64)
    name = models.CharField(max_length=200)
    quantity = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    unit_price = money_field("In the order's currency: 25.99 is USD 25.99.")

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku}"

    def clean(self) -> None:
        # The admin's inline cleans each line with its order attached, currency and
        # all; a line cleaned on its own has none to check against.
        try:
            order = self.order
        except Order.DoesNotExist:
            return
        validate_amount(self.unit_price, order.currency, "unit_price")

    @property
    def total(self) -> Decimal:
        """The line's amount, in major units of the order's currency."""
        return self.quantity * self.unit_price
