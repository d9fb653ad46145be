from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps
from oscar.core.loading import get_model

from django_openai_capi.tracking.registry import registry

# The oscar session's fake Conversions API on loopback, as OPENAI_CAPI_ENDPOINT.
from tests.contrib.oscar.conftest import fake  # noqa: F401


@pytest.fixture
def restart() -> Iterator[Any]:
    """Run the app's ready() again, as a new process would, with Order unregistered."""
    config = apps.get_app_config("openai_capi_oscar")
    with registry.override(get_model("order", "Order"), None):
        yield config.ready
