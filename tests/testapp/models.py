"""Host models the tracking tests register conversions for."""

from __future__ import annotations

import uuid

from django.db import models


class Order(models.Model):
    number = models.CharField(max_length=32)
    email = models.CharField(max_length=254, blank=True, default="")
    currency = models.CharField(max_length=3, default="USD")
    is_paid = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.number


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    sku = models.CharField(max_length=32)
    name = models.CharField(max_length=100)
    quantity = models.PositiveIntegerField(default=1)
    unit_price_cents = models.PositiveIntegerField()

    def __str__(self) -> str:
        return self.sku


class RushOrder(Order):
    """A proxy: saves through it arrive with RushOrder as the signal's sender."""

    class Meta:
        proxy = True


class Signup(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    email = models.CharField(max_length=254)

    def __str__(self) -> str:
        return self.email


class Note(models.Model):
    """Never registered: its saves must cost the tracking nothing and record nothing."""

    text = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.text


class GiftOrder(Order):
    """A multi-table child: Django signals its saves with GiftOrder alone."""

    message = models.CharField(max_length=100, blank=True, default="")


class Coupon(models.Model):
    code = models.CharField(primary_key=True, max_length=300)

    def __str__(self) -> str:
        return self.code
