"""Found by autodiscovery, as a host app's conversions.py would be."""

from __future__ import annotations

from collections.abc import Mapping

from django_openai_capi import ModelConversion, register
from tests.testapp.models import Order, Signup


@register(Order)
class OrderConversion(ModelConversion[Order]):
    event_type = "order_created"

    def should_track(self, obj: Order, created: bool) -> bool:
        return created and obj.is_paid

    def get_user(self, obj: Order) -> Mapping[str, object]:
        return {"email": obj.email} if obj.email else {}

    def get_data(self, obj: Order) -> Mapping[str, object]:
        lines = list(obj.lines.order_by("id"))
        return {
            "amount": sum(line.quantity * line.unit_price_cents for line in lines),
            "currency": obj.currency,
            "contents": [
                {
                    "id": line.sku,
                    "name": line.name,
                    "quantity": line.quantity,
                    "amount": line.unit_price_cents,
                }
                for line in lines
            ],
        }

    def get_source_url(self, obj: Order) -> str:
        return "https://shop.example.com/checkout"


@register(Signup)
class SignupConversion(ModelConversion[Signup]):
    event_type = "registration_completed"
