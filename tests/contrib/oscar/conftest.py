from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from django_openai_capi.testing import FakeConversionsAPI


@pytest.fixture
def fake(settings: Any) -> Iterator[FakeConversionsAPI]:
    """The fake Conversions API over real HTTP on loopback, as OPENAI_CAPI_ENDPOINT."""
    with FakeConversionsAPI(
        api_key=settings.OPENAI_CAPI_API_KEY, pixels=[settings.OPENAI_CAPI_PIXEL_ID]
    ).start() as api:
        settings.OPENAI_CAPI_ENDPOINT = api.url
        yield api
