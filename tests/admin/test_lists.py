"""The outbox in the admin: visible, searchable, and read-only."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from django_openai_capi.models import ConversionEvent, DeliveryBatch, PixelPause
from tests.outbox import MakeEvents

pytestmark = pytest.mark.django_db


def test_the_event_list_shows_status_and_finds_an_event_by_its_id(
    admin_client: Any, make_events: MakeEvents
) -> None:
    make_events(3)
    url = reverse("admin:django_openai_capi_conversionevent_changelist")

    listing = admin_client.get(url)
    found = admin_client.get(url, {"q": "lead-1"})
    sent = admin_client.get(url, {"status__exact": "sent"})

    cell = b'<td class="field-event_id">lead-'
    assert listing.status_code == 200
    assert listing.content.count(cell) == 3
    assert found.content.count(cell) == 1
    assert cell not in sent.content


def test_an_event_opens_read_only_and_cannot_be_added_or_deleted(
    admin_client: Any, make_events: MakeEvents
) -> None:
    (event,) = make_events(1)

    page = admin_client.get(
        reverse("admin:django_openai_capi_conversionevent_change", args=[event.pk])
    )

    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert (
        admin_client.get(
            reverse("admin:django_openai_capi_conversionevent_add")
        ).status_code
        == 403
    )
    assert (
        admin_client.post(
            reverse("admin:django_openai_capi_conversionevent_delete", args=[event.pk])
        ).status_code
        == 403
    )
    assert ConversionEvent.objects.count() == 1


def test_batches_and_pauses_are_listed(admin_client: Any) -> None:
    batch = DeliveryBatch.objects.create(
        claim_id="9f1c2a4e-0000-4000-8000-000000000001",
        pixel_id="test-pixel",
        size=10,
        outcome=DeliveryBatch.Outcome.ACCEPTED,
        request_id="req_abc",
    )
    PixelPause.objects.create(
        pixel_id="test-pixel", paused_until=timezone.now(), error="HTTP 401"
    )

    batches = admin_client.get(
        reverse("admin:django_openai_capi_deliverybatch_changelist")
    )
    pauses = admin_client.get(reverse("admin:django_openai_capi_pixelpause_changelist"))

    assert (
        b"req_abc" in batches.content
        and str(batch) == "10 events to test-pixel (accepted)"
    )
    assert b"HTTP 401" in pauses.content


def test_no_list_or_page_shows_a_key_added_to_the_settings_after_its_error(
    admin_client: Any, settings: Any
) -> None:
    # Stored before the key was configured, so stored unredacted: every admin page
    # redacts with the keys of today.
    key = "sk-added-later-0123456789abcdef"
    error = f"HTTP 401: invalid key {key}"
    batch = DeliveryBatch.objects.create(
        claim_id="9f1c2a4e-0000-4000-8000-000000000002",
        pixel_id="test-pixel",
        size=1,
        outcome=DeliveryBatch.Outcome.AUTH_ERROR,
        error=error,
    )
    pause = PixelPause.objects.create(
        pixel_id="test-pixel", paused_until=timezone.now(), error=error
    )
    event = ConversionEvent.objects.create(
        pixel_id="test-pixel",
        event_type="lead_created",
        event_id="lead-1",
        event_time=timezone.now(),
        expires_at=timezone.now() + timedelta(days=7),
        status=ConversionEvent.Status.FAILED,
        last_error=error,
    )
    settings.OPENAI_CAPI_PIXEL_API_KEYS = {"other-pixel": key}

    pages = [
        reverse("admin:django_openai_capi_deliverybatch_changelist"),
        reverse("admin:django_openai_capi_deliverybatch_change", args=[batch.pk]),
        reverse("admin:django_openai_capi_pixelpause_changelist"),
        reverse("admin:django_openai_capi_pixelpause_change", args=[pause.pk]),
        reverse("admin:django_openai_capi_conversionevent_changelist"),
        reverse("admin:django_openai_capi_conversionevent_change", args=[event.pk]),
    ]
    for url in pages:
        html = admin_client.get(url).content.decode()
        assert key not in html, url
        assert "invalid key [redacted]" in html, url
