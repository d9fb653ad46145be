from __future__ import annotations

import json
import time
from typing import Any

from django_openai_capi.testing import FakeConversionsAPI, FakeResponse

NOW_MS = 1_790_000_000_000
DAY_MS = 24 * 60 * 60 * 1000
KEY = "test-key"
PIXEL = "test-pixel"
HASH = "b4c9a289323b21a01c3e940f150eb9b8c542587f1abfd8f0e1cc1ffc5e475514"
MISSING: Any = object()


def now_ms() -> int:
    return int(time.time() * 1000)


def event(event_id: str = "order-1", /, **fields: Any) -> dict[str, Any]:
    """A valid order_created event at NOW_MS; a field set to MISSING is left out."""
    base: dict[str, Any] = {
        "id": event_id,
        "type": "order_created",
        "timestamp_ms": NOW_MS,
        "action_source": "web",
        "source_url": "https://shop.example.com/checkout",
        "data": {"type": "contents", "amount": 2599, "currency": "USD"},
    }
    base.update(fields)
    return {name: value for name, value in base.items() if value is not MISSING}


def live_event(event_id: str = "order-1", /, **fields: Any) -> dict[str, Any]:
    return event(event_id, timestamp_ms=now_ms(), **fields)


def fixed_fake(**kwargs: Any) -> FakeConversionsAPI:
    return FakeConversionsAPI(clock=lambda: NOW_MS / 1000, **kwargs)


def send(
    fake: FakeConversionsAPI,
    body: Any,
    *,
    pixel: str | None = PIXEL,
    key: str | None = KEY,
    method: str = "POST",
    path: str = "/v1/events",
) -> FakeResponse | None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    query = "" if pixel is None else f"?pid={pixel}"
    headers = {"Accept": "*/*"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return fake.handle(method, path + query, headers, raw)


def answer(fake: FakeConversionsAPI, body: Any, **kwargs: Any) -> FakeResponse:
    response = send(fake, body, **kwargs)
    assert response is not None
    return response


def error(response: FakeResponse) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    return body


def envelope(
    message: str, *, type: str = "invalid_request_error", **fields: Any
) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": type, "param": None, "code": None}
        | fields
    }
