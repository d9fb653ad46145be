"""What the sign-up sessions (tests/contrib/auth, tests/contrib/allauth) share."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest

from django_openai_capi.delivery import send_pending
from django_openai_capi.models import ConversionEvent
from django_openai_capi.testing import FakeConversionsAPI

#: A visitor's browser, as the middleware reads it.
VISITOR: dict[str, Any] = {
    "HTTP_USER_AGENT": "Mozilla/5.0 (sign-up test)",
    "REMOTE_ADDR": "203.0.113.7",
}


@pytest.fixture
def fake(settings: Any) -> Iterator[FakeConversionsAPI]:
    """The fake Conversions API on loopback, where the endpoint setting points."""
    with FakeConversionsAPI(api_key="test-key", pixels=["test-pixel"]) as api:
        settings.OPENAI_CAPI_ENDPOINT = api.url
        yield api


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def delivered(fake: FakeConversionsAPI) -> list[dict[str, Any]]:
    """Send what is due, then every event the fake accepted, in the order sent."""
    send_pending()
    return list(fake.accepted.values())


def recorded() -> list[tuple[str, str]]:
    """(event type, source label) of every recorded event."""
    return list(
        ConversionEvent.objects.order_by("id").values_list("event_type", "source_label")
    )
