from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import models

from django_openai_capi.tracking.conversion import ModelConversion
from django_openai_capi.tracking.registry import registry

Swap = Callable[[type[models.Model], type[ModelConversion[Any]]], ModelConversion[Any]]


@pytest.fixture
def swap_conversion() -> Iterator[Swap]:
    """Register a conversion for a model for one test, restoring the previous one after."""
    previous: dict[type[models.Model], ModelConversion[Any] | None] = {}

    def swap(
        model: type[models.Model], cls: type[ModelConversion[Any]]
    ) -> ModelConversion[Any]:
        if model not in previous:
            previous[model] = registry.get(model)
        if registry.get(model) is not None:
            registry.unregister(model)
        return registry.register(model, cls)

    yield swap
    for model, conversion in previous.items():
        if registry.get(model) is not None:
            registry.unregister(model)
        if conversion is not None:
            registry._conversions[model] = conversion


@pytest.fixture
def record_failures(settings: Any) -> None:
    """Production behaviour: a broken conversion is recorded as failed, not raised."""
    settings.OPENAI_CAPI_RAISE_ERRORS = False
