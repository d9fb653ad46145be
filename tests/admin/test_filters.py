"""The pixel filter's choices come from the settings, pauses and recent requests."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from django_openai_capi.admin.filters import known_pixels
from django_openai_capi.models import DeliveryBatch, PixelPause
from tests.admin.conftest import CHANGELIST
from tests.outbox import MakeEvents

pytestmark = pytest.mark.django_db


def test_the_pixels_offered_are_configured_paused_or_recently_sent_to(
    settings: Any,
) -> None:
    settings.OPENAI_CAPI_PIXEL_API_KEYS = {"other-account": "k2"}
    PixelPause.objects.create(pixel_id="paused", paused_until=timezone.now())
    for pixel, days_ago in [("recent", 1), ("long-gone", 30)]:
        DeliveryBatch.objects.create(
            claim_id=uuid.uuid4(),
            pixel_id=pixel,
            size=1,
            outcome=DeliveryBatch.Outcome.ACCEPTED,
            created_at=timezone.now() - timedelta(days=days_ago),
        )

    assert known_pixels() == ["other-account", "paused", "recent", "test-pixel"]


def test_a_setting_that_is_not_a_dict_is_left_to_the_checks(settings: Any) -> None:
    settings.OPENAI_CAPI_PIXEL_ID = None
    settings.OPENAI_CAPI_PIXEL_API_KEYS = ["not", "a", "dict"]

    assert known_pixels() == []


def test_filtering_by_a_pixel_nobody_configured_still_works(
    admin_client: Any, make_events: MakeEvents
) -> None:
    make_events(2, pixel_id="typed-in")
    make_events(1, prefix="default")

    page = admin_client.get(CHANGELIST, {"pixel_id": "typed-in"})

    assert [e.pixel_id for e in page.context["cl"].result_list] == ["typed-in"] * 2
    assert b"?pixel_id=typed-in" in page.content
