"""Fixtures and helpers for tests of stored events: ``make_events``, ``api``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import django
import pytest
import responses
from django.utils import timezone

from django_openai_capi.api import build_event, encode_event
from django_openai_capi.models import ACCEPTANCE_WINDOW, ConversionEvent
from django_openai_capi.testing import FakeConversionsAPI

ENDPOINT = "http://127.0.0.1:9/v1/events"

#: Who ``mail_admins`` writes to, as the running Django spells ADMINS: Django 6 takes
#: addresses and deprecates the (name, address) pairs that Django 5.2 requires.
ADMINS: list[Any] = (
    ["ops@example.com"] if django.VERSION >= (6,) else [("Ops", "ops@example.com")]
)

MakeEvents = Callable[..., list[ConversionEvent]]


@pytest.fixture
def make_events(db: None) -> MakeEvents:
    """Store *count* built, due, pending events (ids ``{prefix}-0`` ...) in one query."""

    def make(
        count: int,
        *,
        pixel_id: str = "test-pixel",
        prefix: str = "lead",
        event_time: datetime | None = None,
        **fields: Any,
    ) -> list[ConversionEvent]:
        when = event_time or timezone.now() - timedelta(minutes=1)
        unbuilt = "payload" in fields and fields.pop("payload") is None
        rows = []
        for i in range(count):
            event_id = f"{prefix}-{i}"
            payload = encode_event(
                build_event(
                    "lead_created",
                    event_id=event_id,
                    event_time=when,
                    user={"external_id": event_id},
                    # Valid when it was recorded, however old it is now.
                    now=int(when.timestamp() * 1000),
                )
            )
            event = ConversionEvent(
                pixel_id=pixel_id,
                event_type="lead_created",
                event_id=event_id,
                event_time=when,
                expires_at=when + ACCEPTANCE_WINDOW,
                source_label=f"test:{event_id}",
                **fields,
            )
            rows.append(event if unbuilt else with_payload(event, payload))
        return ConversionEvent.objects.bulk_create(rows)

    return make


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def with_payload(event: ConversionEvent, payload: str) -> ConversionEvent:
    """*event*, built with *payload* (stored when it is saved).

    ``ConversionEvent(payload=...)`` does the same, but django-stubs' mypy plugin
    only knows the model's fields.
    """
    event.payload = payload
    return event


def unbuild(*events: ConversionEvent) -> None:
    """Take *events* back to unbuilt, as a recorded model conversion is until built."""
    for event in events:
        event.payload = None
        event.save()


def body_of(call: Any) -> dict[str, Any]:
    """The JSON body of a recorded request."""
    body: dict[str, Any] = json.loads(call.request.body)
    return body


def sent_ids(call: Any) -> list[str]:
    """The event ids a recorded request carried."""
    return [event["id"] for event in body_of(call)["events"]]


def statuses() -> dict[str, str]:
    return dict(ConversionEvent.objects.values_list("event_id", "status"))


def error_envelope(index: int | None, message: str = "bad", code: str = "x") -> str:
    error: dict[str, Any] = {
        "message": "Invalid event"
        + (
            f" at events[{index}]. See errors for details."
            if index is not None
            else "."
        ),
        "type": "invalid_request_error",
        "param": None if index is None else f"events[{index}]",
        "code": "invalid_event",
    }
    if index is not None:
        error["errors"] = [
            {"message": message, "param": f"events[{index}].data.type", "code": code}
        ]
    return json.dumps({"error": error})


def refuse_every_request(fake: FakeConversionsAPI, fault: str) -> None:
    """Make *fake* refuse whatever it is sent: the request itself ("request_refused",
    a 400 naming no event), or OpenAI's 503 "Authentication backend failure"."""
    if fault == "request_refused":
        fake.answer_every_request(400, json.loads(error_envelope(None)))
    else:
        fake.outage("auth_backend_failure")


def fake_at_endpoint(
    settings: Any, api: responses.RequestsMock, key: str
) -> FakeConversionsAPI:
    """The fake Conversions API, knowing *key* and test-pixel, answering at ENDPOINT."""
    settings.OPENAI_CAPI_API_KEY = key
    fake = FakeConversionsAPI(api_key=key, pixels=["test-pixel"])
    fake.mock(api, ENDPOINT)
    return fake
