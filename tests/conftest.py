from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from django.db import connections, models

from django_openai_capi.tracking.conversion import ModelConversion
from django_openai_capi.tracking.registry import registry

# Outbox rows and a mocked endpoint, for every test package.
pytest_plugins = ["tests.outbox"]


TESTS = Path(__file__).resolve().parent
CONTRIB = TESTS / "contrib"
#: The documentation's snippets (tests/docs/settings.py: the guides' example project).
DOCS = TESTS / "docs"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Leave a session's own folder to that session (tests/run.py).

    tests/contrib/<host> holds a settings.py when its tests need a project of their
    own (a host package's apps, a conversion registered for the whole process), and
    tests/docs holds the documentation's example project; their tests are collected
    only in the session started with those settings.
    """
    if collection_path.parent != CONTRIB and collection_path != DOCS:
        return None
    if not collection_path.is_dir() or not (collection_path / "settings.py").exists():
        return None
    module = ".".join(collection_path.relative_to(TESTS.parent).parts)
    return f"{module}.settings" != os.environ.get("DJANGO_SETTINGS_MODULE")


def pytest_report_header(config: pytest.Config) -> str:
    database = connections["default"]
    return f"database: {database.vendor} ({database.settings_dict['NAME']})"


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    if connections["default"].vendor == "postgresql":
        return
    skip_postgres = pytest.mark.skip(
        reason="needs PostgreSQL: set DATABASE_URL=postgres://USER@HOST:PORT/NAME"
    )
    for item in items:
        if item.get_closest_marker("postgres"):
            item.add_marker(skip_postgres)


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


UseConsent = Callable[[str | None], list[tuple[Any, Any]]]


@pytest.fixture
def use_consent(settings: Any) -> Iterator[UseConsent]:
    """Set OPENAI_CAPI_CONSENT to one of tests/testapp/consent.py's callables by name.

    Returns the list of the calls it receives, as (request, event).
    """
    from django_openai_capi.tracking import consent
    from tests.testapp import consent as callables

    def use(name: str | None) -> list[tuple[Any, Any]]:
        settings.OPENAI_CAPI_CONSENT = (
            None if name is None else f"tests.testapp.consent.{name}"
        )
        return callables.CALLS

    callables.CALLS.clear()
    consent._load.cache_clear()
    yield use
    callables.CALLS.clear()
    consent._load.cache_clear()
