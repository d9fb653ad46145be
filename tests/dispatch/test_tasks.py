"""The task DISPATCH = "task" enqueues, and how the Tasks framework is found."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime
from typing import Any

import django
import pytest
import responses

from django_openai_capi import dispatch
from django_openai_capi.delivery import DeliveryReport
from django_openai_capi.exceptions import CapiError, ConversionError
from django_openai_capi.tasks import report_to_json, send_pending_events
from django_openai_capi.tracking.building import BuildReport
from tests.dispatch.conftest import ENDPOINT, record_lead, statuses


@pytest.mark.django_db
def test_the_task_sends_what_is_due_and_returns_json() -> None:
    record_lead("lead-1")
    record_lead("lead-2")
    with responses.RequestsMock() as api:
        api.post(ENDPOINT, json={})
        result = send_pending_events.call()
    assert statuses() == {"lead-1": "sent", "lead-2": "sent"}
    assert json.loads(json.dumps(result)) == result
    assert result["sent"] == 2
    assert result["summary"].startswith("claimed 2, sent 2")


@pytest.mark.django_db
def test_the_task_sends_at_most_a_bounded_number_of_batches(
    settings: Any, monkeypatch: Any
) -> None:
    seen: dict[str, Any] = {}

    def send_pending(**kwargs: Any) -> DeliveryReport:
        seen.update(kwargs)
        return DeliveryReport()

    monkeypatch.setattr("django_openai_capi.tasks.send_pending", send_pending)
    send_pending_events.call(using="default")
    assert seen == {"using": "default", "max_batches": dispatch.MAX_BATCHES_PER_WAKE_UP}


def test_a_failing_task_raises_a_redacted_error_without_the_original(
    monkeypatch: Any,
) -> None:
    # The Tasks backend logs and stores the traceback itself, unredacted.
    def broken(**kwargs: Any) -> DeliveryReport:
        raise RuntimeError("connection refused, key test-key")

    monkeypatch.setattr("django_openai_capi.tasks.send_pending", broken)
    with pytest.raises(CapiError) as raised:
        send_pending_events.call()
    assert str(raised.value) == (
        "send_pending_events failed: RuntimeError: connection refused, key [redacted]"
    )
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__


def test_a_report_becomes_json() -> None:
    report = DeliveryReport(
        sent=3, paused={"px": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)}
    )
    data = report_to_json(report)
    assert data["paused"] == {"px": "2026-01-02T03:04:05+00:00"}
    assert data["sent"] == 3
    assert data["summary"] == report.summary()
    json.dumps(data)


def test_a_reports_build_is_json_too_without_its_exception() -> None:
    failure = ConversionError("get_data raised", source_label="shop.Order:1")
    report = DeliveryReport(build=BuildReport(built=2, failed=1, first_error=failure))
    total = DeliveryReport()
    total.merge(report)
    total.merge(report)

    data = report_to_json(total)

    assert (data["built"], data["not_built"]) == (4, 2)
    assert "build" not in data
    assert "built 4, not built 2" in data["summary"]
    assert total.build.first_error is failure
    json.dumps(data)


def test_djangos_own_tasks_framework_is_preferred() -> None:
    expected = "django.tasks" if django.VERSION >= (6, 0) else "django_tasks"
    assert dispatch.tasks_framework() == expected


def test_no_tasks_framework(monkeypatch: Any) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert dispatch.tasks_framework() is None
