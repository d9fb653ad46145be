"""What a wake-up does: enqueue the task, send inline, or nothing; never raise."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import responses
from django.db import transaction

from django_openai_capi import dispatch
from tests.dispatch.conftest import DUMMY, IMMEDIATE, record_lead, statuses
from tests.testapp.models import Order

pytestmark = pytest.mark.django_db(transaction=True)


def test_inline_sends_once_the_transaction_commits(
    inline_dispatch: responses.RequestsMock,
) -> None:
    with transaction.atomic():
        record_lead("lead-1")
        record_lead("lead-2")
        Order.objects.create(number="A-1", email="buyer@example.com")
        assert len(inline_dispatch.calls) == 0
    assert len(inline_dispatch.calls) == 1  # one wake-up, one batch
    assert set(statuses().values()) == {"sent"}


def test_inline_sends_an_event_recorded_in_autocommit_at_once(
    inline_dispatch: responses.RequestsMock,
) -> None:
    record_lead("lead-1")
    assert statuses() == {"lead-1": "sent"}


def test_inline_sends_a_bounded_number_of_batches(
    inline_dispatch: responses.RequestsMock, settings: Any, monkeypatch: Any
) -> None:
    # A backlog is the worker's job, not the committing request's.
    monkeypatch.setattr(dispatch, "MAX_BATCHES_PER_WAKE_UP", 2)
    settings.OPENAI_CAPI_BATCH_SIZE = 1
    with transaction.atomic():
        for i in range(3):
            record_lead(f"lead-{i}")
    assert len(inline_dispatch.calls) == 2
    assert sorted(statuses().values()) == ["pending", "sent", "sent"]


def test_inline_failures_are_logged_redacted_and_never_raised(
    inline_dispatch: responses.RequestsMock, monkeypatch: Any, caplog: Any
) -> None:
    def broken(**kwargs: Any) -> None:
        raise RuntimeError("database gone, key test-key")

    monkeypatch.setattr("django_openai_capi.delivery.worker.send_pending", broken)
    with (
        caplog.at_level(logging.ERROR, logger="django_openai_capi.dispatch"),
        transaction.atomic(),
    ):
        record_lead("lead-1")
    assert statuses() == {"lead-1": "pending"}  # the worker command will send it
    [log] = caplog.records
    assert "RuntimeError: database gone, key [redacted]" in log.getMessage()
    assert "openai_capi_send" in log.getMessage()
    assert "test-key" not in log.getMessage()
    assert log.exc_info is None  # a formatted traceback would not be redacted


def test_an_enqueue_that_fails_is_logged_and_never_raised(
    task_dispatch: Any, monkeypatch: Any, caplog: Any
) -> None:
    def down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("queue down, key test-key")

    monkeypatch.setattr(type(task_dispatch), "enqueue", down)
    with (
        caplog.at_level(logging.ERROR, logger="django_openai_capi.dispatch"),
        transaction.atomic(),
    ):
        record_lead("lead-1")
    assert statuses() == {"lead-1": "pending"}
    [log] = caplog.records
    assert "ConnectionError: queue down, key [redacted]" in log.getMessage()
    assert "test-key" not in log.getMessage()
    assert log.exc_info is None


def test_a_broken_tasks_setting_is_logged_and_never_raised(
    settings: Any, caplog: Any
) -> None:
    settings.OPENAI_CAPI_DISPATCH = "task"
    settings.TASKS = {"default": {"BACKEND": "no_such.Backend"}}
    with caplog.at_level(logging.ERROR, logger="django_openai_capi.dispatch"):
        record_lead("lead-1")
    assert statuses() == {"lead-1": "pending"}
    [log] = caplog.records
    assert "no_such.Backend" in log.getMessage()


def test_task_on_the_immediate_backend_sends_inside_the_commit(settings: Any) -> None:
    # What system check W009 warns about: it works, synchronously.
    settings.OPENAI_CAPI_DISPATCH = "task"
    settings.TASKS = {"default": {"BACKEND": IMMEDIATE}}
    with responses.RequestsMock() as api:
        api.post("http://127.0.0.1:9/v1/events", json={})
        with transaction.atomic():
            record_lead("lead-1")
            record_lead("lead-2")
        assert len(api.calls) == 1
    assert set(statuses().values()) == {"sent"}


def test_task_on_the_dummy_backend_sends_nothing(settings: Any) -> None:
    # What system check W010 warns about.
    settings.OPENAI_CAPI_DISPATCH = "task"
    settings.TASKS = {"default": {"BACKEND": DUMMY}}
    record_lead("lead-1")
    assert statuses() == {"lead-1": "pending"}
