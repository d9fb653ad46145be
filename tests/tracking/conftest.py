from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from django.db import models

from django_openai_capi.tracking.conversion import ModelConversion
from django_openai_capi.tracking.registry import registry

Swap = Callable[[type[models.Model], type[ModelConversion[Any]]], ModelConversion[Any]]


@pytest.fixture
def swap_conversion() -> Iterator[Swap]:
    """Register a conversion for a model for one test, restoring the previous one after."""
    with ExitStack() as stack:

        def swap(
            model: type[models.Model], cls: type[ModelConversion[Any]]
        ) -> ModelConversion[Any]:
            conversion = stack.enter_context(registry.override(model, cls))
            assert conversion is not None
            return conversion

        yield swap


@pytest.fixture
def record_failures(settings: Any) -> None:
    """Production behaviour: a broken conversion is recorded as failed, not raised."""
    settings.OPENAI_CAPI_RAISE_ERRORS = False
