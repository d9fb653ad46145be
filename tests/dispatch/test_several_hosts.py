"""Delivery on several hosts: queue workers and a worker command on one PostgreSQL.

Two RQ workers, two Celery workers and an ``openai_capi_send --loop``, each a process
with its own database connection, as on as many machines, drain one backlog recorded
by many commits, which enqueue their tasks to RQ and Celery in turn. The claims
(``SELECT ... FOR UPDATE SKIP LOCKED``) share the backlog out: every event reaches
the API once, and what the fake accepted is what the outbox says it sent.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import transaction

from django_openai_capi.models import ConversionEvent, DeliveryBatch
from django_openai_capi.testing import FakeConversionsAPI
from tests.dispatch.conftest import record_lead, statuses
from tests.dispatch.test_queues import wait_for
from tests.processes import catches, running, start_worker
from tests.queues import QueueBackend

Status = ConversionEvent.Status

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

COMMITS = 12
EVENTS_PER_COMMIT = 25


@pytest.fixture
def fake(settings: Any) -> Iterator[FakeConversionsAPI]:
    settings.OPENAI_CAPI_DISPATCH = "task"
    # Slow enough that the workers overlap, each request holding its claim a while.
    with FakeConversionsAPI(
        api_key="test-key", pixels=["test-pixel"], latency=0.02
    ) as api:
        yield api


def test_queue_workers_and_the_worker_command_share_a_backlog_each_event_sent_once(
    settings: Any,
    rq_backend: QueueBackend,
    celery_backend: QueueBackend,
    fake: FakeConversionsAPI,
) -> None:
    with ExitStack() as stack:
        # Batches of 10, so that the backlog takes many claims, by all of them. Each
        # is killed on the way out, even if a later one fails to start.
        workers = []
        for backend in (rq_backend, celery_backend):
            for i in range(2):
                worker = backend.start_worker(
                    endpoint=fake.url, name=f"host-{i}", batch_size=10
                )
                stack.enter_context(running(worker))
                workers.append(worker)
        wait_for(lambda: all(w.is_ready() for w in workers), "the workers to listen")
        command = start_worker(
            "--loop", "--interval", "0.2", "--batch-size", "10", endpoint=fake.url
        )
        try:
            wait_for(lambda: catches(command.pid, signal.SIGTERM), "the command")
            for commit in range(COMMITS):
                # Each commit's task goes to RQ and Celery in turn.
                settings.TASKS = {
                    "default": {
                        "BACKEND": django_settings.TASK_BACKENDS[
                            "rq" if commit % 2 else "celery"
                        ]
                    }
                }
                with transaction.atomic():
                    for i in range(EVENTS_PER_COMMIT):
                        record_lead(f"lead-{commit}-{i}")
            wait_for(
                lambda: (
                    ConversionEvent.objects.filter(status=Status.SENT).count()
                    == COMMITS * EVENTS_PER_COMMIT
                ),
                "every event to be sent",
                timeout=120,
            )
        finally:
            command.send_signal(signal.SIGTERM)
            try:
                output, errors = command.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                command.kill()  # deaf to SIGTERM: not left running
                command.communicate()
                raise

    assert command.returncode == 0, errors
    sent = statuses()
    assert len(sent) == COMMITS * EVENTS_PER_COMMIT
    assert set(sent.values()) == {Status.SENT}
    assert sorted(fake.accepted_ids()) == sorted(sent)
    assert set(fake.receipts.values()) == {1}  # none twice
    assert set(ConversionEvent.objects.values_list("attempts", flat=True)) == {1}
    # Requests came from more than one process (which ones is the scheduler's call).
    assert DeliveryBatch.objects.values("worker").distinct().count() > 1
