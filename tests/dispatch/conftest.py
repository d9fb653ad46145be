from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import pytest
import responses
from django.db import connections

from django_openai_capi.dispatch import WakeUp, tasks_framework
from django_openai_capi.models import ConversionEvent
from django_openai_capi.tracking import track

# The queues' fixtures, for the tests of delivery through RQ and Celery.
from tests.queues import (  # noqa: F401
    celery_backend,
    celery_queue,
    queue_backend,
    redis_db,
    rq_backend,
)

ENDPOINT = "http://127.0.0.1:9/v1/events"
FRAMEWORK = tasks_framework()
DUMMY = f"{FRAMEWORK}.backends.dummy.DummyBackend"
IMMEDIATE = f"{FRAMEWORK}.backends.immediate.ImmediateBackend"


@pytest.fixture
def task_dispatch(settings: Any) -> Any:
    """DISPATCH = "task" on Django's DummyBackend; returns the backend, which keeps
    every task enqueued and runs none."""
    settings.OPENAI_CAPI_DISPATCH = "task"
    settings.TASKS = {"default": {"BACKEND": DUMMY}}
    return importlib.import_module(str(FRAMEWORK)).task_backends["default"]


@pytest.fixture
def inline_dispatch(settings: Any) -> Iterator[responses.RequestsMock]:
    """DISPATCH = "inline", with the API mocked; yields the mock."""
    settings.OPENAI_CAPI_DISPATCH = "inline"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as api:
        api.post(ENDPOINT, json={})
        yield api


def record_lead(event_id: str) -> bool:
    return track(
        "lead_created", event_id=event_id, user={"email": f"{event_id}@example.com"}
    )


def pending_wake_ups(using: str = "default") -> int:
    """Wake-ups the open transaction on *using* will run when it commits."""
    return sum(
        isinstance(entry[1], WakeUp) for entry in connections[using].run_on_commit
    )


def statuses() -> dict[str, str]:
    return dict(ConversionEvent.objects.values_list("event_id", "status"))
