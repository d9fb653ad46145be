"""DISPATCH = "task" through the queues shops run: RQ and Celery, each end to end.

The commit enqueues the task through the Tasks framework (django-tasks-rq on Redis,
django-tasks-fennel on RabbitMQ); a queue worker in a process of its own runs it and
sends to the fake over HTTP. A worker killed mid-request loses nothing: not because the
queue runs the job again (neither does, with their defaults: RQ leaves a dead worker's
job in its started registry, Celery acknowledged the message when the job began), but
because the outbox's lease runs out and the next task takes the event back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from django_openai_capi.models import ConversionEvent
from django_openai_capi.tasks import send_pending_events
from django_openai_capi.testing import FakeConversionsAPI
from tests.dispatch.conftest import record_lead, statuses
from tests.processes import running
from tests.queues import QueueBackend
from tests.testapp.models import Order, OrderLine

Status = ConversionEvent.Status

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fake(settings: Any) -> Iterator[FakeConversionsAPI]:
    settings.OPENAI_CAPI_DISPATCH = "task"
    with FakeConversionsAPI(api_key="test-key", pixels=["test-pixel"]) as api:
        yield api


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def all_sent() -> bool:
    return set(statuses().values()) == {Status.SENT}


def test_switching_tasks_switches_the_backend_the_task_is_enqueued_to(
    settings: Any,
) -> None:
    # What the fixtures rely on: Django (and the backport) drop their backends when
    # TASKS changes, so the task, created once, enqueues to the new one.
    from django_tasks_fennel import CeleryBackend
    from django_tasks_rq import RQBackend

    settings.TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend"}}
    assert isinstance(send_pending_events.get_backend(), RQBackend)
    settings.TASKS = {"default": {"BACKEND": "django_tasks_fennel.CeleryBackend"}}
    assert isinstance(send_pending_events.get_backend(), CeleryBackend)


def test_a_commit_is_sent_by_a_queue_worker_process(
    queue_backend: QueueBackend, fake: FakeConversionsAPI
) -> None:
    with transaction.atomic():
        for i in range(3):
            record_lead(f"lead-{i}")
        order = Order.objects.create(number="A-1", email="buyer@example.com")
        OrderLine.objects.create(
            order=order, sku="SKU-1", name="Mug", quantity=2, unit_price_cents=1250
        )
    wait_for(lambda: queue_backend.jobs_waiting() == 1, "one job for the transaction")
    assert fake.requests == []

    worker = queue_backend.start_worker(endpoint=fake.url, name="e2e")
    with running(worker):
        wait_for(all_sent, "the worker to send", timeout=60)

    assert queue_backend.jobs_waiting() == 0
    assert sorted(fake.accepted_ids()) == sorted(statuses())
    assert len(statuses()) == 4
    assert len(fake.requests) == 1


def test_a_worker_killed_mid_request_loses_nothing_the_lease_brings_it_back(
    queue_backend: QueueBackend, fake: FakeConversionsAPI
) -> None:
    # The request reaches the API, which refuses it, but its answer is slow: the
    # worker dies waiting. Nothing was accepted; the event exists only in the outbox.
    fake.fail_next("server_error")
    fake.latency = 60.0
    worker = queue_backend.start_worker(
        endpoint=fake.url, name="doomed", lease_seconds=2
    )
    with running(worker):
        with transaction.atomic():
            record_lead("lead-killed")
        wait_for(lambda: len(fake.requests) == 1, "the request to reach the fake")
        worker.kill()
    fake.latency = 0.0
    [killed] = ConversionEvent.objects.all()
    assert killed.status == Status.SENDING
    assert fake.accepted_ids() == []
    # The queue does not give the job back: it went to the dead worker.
    assert queue_backend.jobs_waiting() == 0

    # A worker restarted, as a supervisor would, and the next commit's task: once
    # the dead worker's lease has run out, the task takes its event back and sends it.
    assert killed.lease_expires_at is not None
    wait = killed.lease_expires_at - timezone.now() + timedelta(milliseconds=100)
    time.sleep(max(wait.total_seconds(), 0))
    successor = queue_backend.start_worker(endpoint=fake.url, name="successor")
    with running(successor):
        with transaction.atomic():
            record_lead("lead-next")
        wait_for(all_sent, "the successor to send both", timeout=60)

    assert sorted(fake.accepted_ids()) == ["lead-killed", "lead-next"]
    assert set(fake.receipts.values()) == {1}
    killed.refresh_from_db()
    assert killed.attempts == 2
