from __future__ import annotations

from django_openai_capi.models import ConversionEvent, DeliveryBatch


def test_rows_describe_themselves_for_the_admin_and_logs() -> None:
    event = ConversionEvent(
        event_type="order_created", event_id="shop.order:42", status="failed"
    )
    assert str(event) == "order_created shop.order:42 (failed)"
    batch = DeliveryBatch(size=1000, pixel_id="px", outcome="accepted")
    assert str(batch) == "1000 events to px (accepted)"
