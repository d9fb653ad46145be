"""Paid plans of the demo site, as a billing system records a new subscription."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from example_project.commerce import CURRENCY_CHOICES, money_field, validate_amount


class Subscription(models.Model):
    """A paid subscription to one plan, at the price it started at."""

    email = models.EmailField()
    plan_id = models.CharField(
        "plan ID",
        max_length=64,
        help_text="The site's own plan id, e.g. pro_monthly; sent as the event's plan_id.",
    )
    price = money_field("In the subscription's currency: 19.99 is USD 19.99.")
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES, default="USD")
    # Not editable: it is the event's timestamp (see SubscriptionConversion).
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.plan_id} for {self.email}"

    def clean(self) -> None:
        validate_amount(self.price, self.currency, "price")
