from __future__ import annotations

import importlib
import uuid
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import connection

from django_openai_capi.models import ConversionEvent, DeliveryBatch

MIGRATION_0008 = importlib.import_module(
    "django_openai_capi.migrations.0008_error_kind_request"
)


def test_rows_describe_themselves_for_the_admin_and_logs() -> None:
    event = ConversionEvent(
        event_type="order_created", event_id="shop.order:42", status="failed"
    )
    assert str(event) == "order_created shop.order:42 (failed)"
    batch = DeliveryBatch(size=1000, pixel_id="px", outcome="accepted")
    assert str(batch) == "1000 events to px (accepted)"


@pytest.mark.django_db
def test_migration_0008_gives_429s_recorded_as_retry_their_own_outcome_and_back() -> (
    None
):
    def batch(outcome: str, http_status: int) -> DeliveryBatch:
        return DeliveryBatch.objects.create(
            claim_id=uuid.uuid4(),
            pixel_id="px",
            size=1,
            outcome=outcome,
            http_status=http_status,
        )

    limited = batch("retry", 429)
    outage = batch("retry", 503)
    refused = batch("request_refused", 400)
    editor = SimpleNamespace(connection=connection)

    MIGRATION_0008.rate_limited_outcome(apps, editor)
    forward = {b.pk: b.outcome for b in DeliveryBatch.objects.all()}
    MIGRATION_0008.retry_outcome(apps, editor)
    backward = {b.pk: b.outcome for b in DeliveryBatch.objects.all()}

    assert forward == {
        limited.pk: "rate_limited",
        outage.pk: "retry",
        refused.pk: "request_refused",
    }
    # Back to the outcomes migration 0007 knows.
    assert backward == {limited.pk: "retry", outage.pk: "retry", refused.pk: "rejected"}
