"""A new paid subscription is a ``subscription_created`` conversion.

Its data is a ``plan_enrollment``: the plan's id and the price it started at. Renewals
are not new conversions; they save other rows (or this one again), which the default
``should_track`` (the first save only) leaves out.
"""

from __future__ import annotations

from collections.abc import Mapping

from django_openai_capi import EventType, ModelConversion, register
from example_project.billing.models import Subscription
from example_project.demo_site import page_url


@register(Subscription)
class SubscriptionConversion(ModelConversion[Subscription]):
    event_type = EventType.SUBSCRIPTION_CREATED
    date_field = "created_at"

    def get_user(self, obj: Subscription) -> Mapping[str, object]:
        return {"email": obj.email}

    def get_data(self, obj: Subscription) -> Mapping[str, object]:
        # The price's Decimal as it is: the library converts it to minor units.
        return {"amount": obj.price, "currency": obj.currency, "plan_id": obj.plan_id}

    def get_source_url(self, obj: Subscription) -> str:
        return page_url("/billing/subscribed")
