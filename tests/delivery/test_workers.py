"""Workers in processes of their own: killed mid-batch, and side by side.

These start ``manage.py openai_capi_send`` as real processes on the test database, so
the data they see must be committed: ``transaction=True``.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator

import pytest

from django_openai_capi.models import ConversionEvent, DeliveryBatch
from django_openai_capi.testing import FakeConversionsAPI
from tests.outbox import MakeEvents, statuses
from tests.processes import start_worker

Status = ConversionEvent.Status

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fake() -> Iterator[FakeConversionsAPI]:
    with FakeConversionsAPI(api_key="test-key", pixels=["test-pixel"]) as api:
        yield api


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def test_a_worker_killed_mid_batch_loses_nothing_and_its_successor_reuses_the_ids(
    make_events: MakeEvents, fake: FakeConversionsAPI
) -> None:
    make_events(500)
    fake.latency = 1.0
    worker = start_worker(
        "--loop",
        "--interval",
        "0.1",
        "--batch-size",
        "100",
        endpoint=fake.url,
        lease_seconds=2,
    )
    try:
        wait_for(lambda: ConversionEvent.objects.filter(status=Status.SENDING).exists())
        in_flight = set(
            ConversionEvent.objects.filter(status=Status.SENDING).values_list(
                "event_id", flat=True
            )
        )
        time.sleep(0.3)  # the request is on the wire, its answer not yet back
        worker.send_signal(signal.SIGKILL)
    finally:
        worker.wait(10)
    assert worker.returncode == -signal.SIGKILL
    assert len(in_flight) == 100
    assert (
        set(
            ConversionEvent.objects.filter(status=Status.SENDING).values_list(
                "event_id", flat=True
            )
        )
        == in_flight
    )

    fake.latency = 0.0
    time.sleep(2.1)  # the dead worker's lease runs out
    successor = start_worker("--batch-size", "100", endpoint=fake.url, lease_seconds=2)
    output, errors = successor.communicate(timeout=60)

    assert successor.returncode == 0, errors
    assert "taken back from stopped workers" in output
    assert set(statuses().values()) == {Status.SENT}
    # Every conversion reached the API under its one id: at most twice (the killed
    # request may have arrived), counted once.
    assert len(fake.accepted) == 500
    assert sorted(fake.accepted_ids()) == sorted(statuses())
    assert max(fake.receipts.values()) <= 2
    resent = ConversionEvent.objects.filter(event_id__in=in_flight)
    assert set(resent.values_list("attempts", flat=True)) == {2}


@pytest.mark.postgres
def test_four_workers_drain_twenty_thousand_events_each_exactly_once(
    make_events: MakeEvents, fake: FakeConversionsAPI
) -> None:
    make_events(20_000)
    fake.latency = 0.05
    workers = [start_worker("--batch-size", "250", endpoint=fake.url) for _ in range(4)]
    results: list[tuple[int, str, str]] = []
    for worker in workers:
        output, errors = worker.communicate(timeout=300)
        results.append((worker.returncode, output, errors))

    assert [code for code, _, _ in results] == [0, 0, 0, 0], results
    assert set(statuses().values()) == {Status.SENT}
    assert len(fake.accepted) == 20_000
    assert set(fake.receipts.values()) == {1}
    assert DeliveryBatch.objects.count() == 80
    assert DeliveryBatch.objects.values("worker").distinct().count() > 1
