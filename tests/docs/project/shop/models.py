"""The quickstart's models, exactly as the documentation shows them (shop/models.py)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Order(models.Model):  # noqa: DJ008  # as the docs show it
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    email = models.EmailField()
    total = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3, default="USD")
    paid = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)


class OrderLine(models.Model):  # noqa: DJ008  # as the docs show it
    order = models.ForeignKey(Order, related_name="lines", on_delete=models.CASCADE)
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    quantity = models.PositiveIntegerField(default=1)
    price = models.DecimalField(max_digits=10, decimal_places=2)


class Subscription(models.Model):  # noqa: DJ008  # as the docs show it
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    plan = models.CharField(max_length=64)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3, default="USD")
    started_at = models.DateTimeField(auto_now_add=True)
