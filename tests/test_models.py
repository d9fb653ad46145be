from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command

from django_openai_capi import migrations
from django_openai_capi.models import ConversionEvent, DeliveryBatch


def test_rows_describe_themselves_for_the_admin_and_logs() -> None:
    event = ConversionEvent(
        event_type="order_created", event_id="shop.order:42", status="failed"
    )
    assert str(event) == "order_created shop.order:42 (failed)"
    batch = DeliveryBatch(size=1000, pixel_id="px", outcome="accepted")
    assert str(batch) == "1000 events to px (accepted)"


@pytest.mark.django_db
def test_the_schema_is_one_initial_migration_that_matches_the_models() -> None:
    # The app is unreleased: nobody has an older schema to upgrade from.
    names = sorted(
        path.stem for path in Path(migrations.__file__).parent.glob("[0-9]*.py")
    )
    assert names == ["0001_initial"]
    call_command("makemigrations", "django_openai_capi", "--check", "--dry-run")
