from __future__ import annotations

from collections.abc import Iterator

import pytest

from django_openai_capi.testing import FakeConversionsAPI


@pytest.fixture
def fake() -> Iterator[FakeConversionsAPI]:
    with FakeConversionsAPI() as fake:
        yield fake
