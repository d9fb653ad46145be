"""DISPATCH = "task" end to end: a real Tasks backend, its worker, a fake API over HTTP.

The backend is django-tasks-db's DatabaseBackend (tests/settings.py): the commit
enqueues a row in the database, and its ``db_worker`` command, in a process of its own,
runs the task, which sends to the fake.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction
from django_tasks_db.models import DBTaskResult

from django_openai_capi.testing import FakeConversionsAPI
from tests.dispatch.conftest import record_lead, statuses
from tests.processes import ROOT, worker_env
from tests.testapp.models import Order, OrderLine

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fake(settings: Any) -> Iterator[FakeConversionsAPI]:
    settings.OPENAI_CAPI_DISPATCH = "task"
    assert settings.TASKS == {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    with FakeConversionsAPI(api_key="test-key", pixels=["test-pixel"]) as api:
        yield api


def run_db_worker(endpoint: str) -> subprocess.CompletedProcess[str]:
    """Run the backend's worker until the queue is empty, as cron would."""
    return subprocess.run(
        [sys.executable, "-m", "django", "db_worker", "--batch", "--no-startup-delay"],
        cwd=ROOT,
        env=worker_env(endpoint),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_commit_is_sent_by_the_task_backends_worker(fake: FakeConversionsAPI) -> None:
    with transaction.atomic():
        for i in range(3):
            record_lead(f"lead-{i}")
        order = Order.objects.create(number="A-1", email="buyer@example.com")
        OrderLine.objects.create(
            order=order, sku="SKU-1", name="Mug", quantity=2, unit_price_cents=1250
        )
    [queued] = DBTaskResult.objects.all()  # one task for the transaction
    assert queued.status == "READY"
    assert queued.task_path == "django_openai_capi.tasks.send_pending_events"
    assert fake.requests == []

    worker = run_db_worker(fake.url)

    assert worker.returncode == 0, worker.stdout + worker.stderr
    queued.refresh_from_db()
    assert queued.status == "SUCCESSFUL", queued.traceback
    assert queued.return_value["sent"] == 4
    assert set(statuses().values()) == {"sent"}
    assert sorted(fake.accepted_ids()) == sorted(statuses())
    assert len(fake.requests) == 1
