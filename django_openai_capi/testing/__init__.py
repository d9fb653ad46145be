"""A fake OpenAI Ads Conversions API for tests: over HTTP on loopback, or with ``responses``.

>>> with FakeConversionsAPI(api_key="test-key", pixels=["test-pixel"]) as fake:
...     ...  # set OPENAI_CAPI_ENDPOINT to fake.url, send, then look at fake.accepted

Run ``python -m django_openai_capi.testing --help`` to serve one from a shell.
"""

from __future__ import annotations

from django_openai_capi.testing.errors import FaultKind
from django_openai_capi.testing.fake import (
    AcceptedEvents,
    EventKey,
    FakeConversionsAPI,
    RecordedRequest,
)
from django_openai_capi.testing.wire import FakeResponse

__all__ = [
    "AcceptedEvents",
    "EventKey",
    "FakeConversionsAPI",
    "FakeResponse",
    "FaultKind",
    "RecordedRequest",
]
