"""Paid plans of the demo site, as a billing system records a new subscription."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from example_project.commerce import CURRENCY_CHOICES


class Subscription(models.Model):
    """A paid subscription to one plan, at the price it started at."""

    email = models.EmailField()
    plan_id = models.CharField(
        "plan ID",
        max_length=64,
        help_text="The site's own plan id, e.g. pro_monthly; sent as the event's plan_id.",
    )
    # An integer in the currency's minor unit (cents for USD): what the API takes.
    price = models.PositiveIntegerField(
        help_text="In the currency's minor unit: 1999 is USD 19.99."
    )
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES, default="USD")
    # Not editable: it is the event's timestamp (see SubscriptionConversion).
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.plan_id} for {self.email}"
