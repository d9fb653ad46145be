"""The outbox row shares the fate of the host's transaction, seen from other connections."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from django_openai_capi import track
from django_openai_capi.models import ConversionEvent
from tests.testapp.models import Order

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def other_connection() -> Iterator[BaseDatabaseWrapper]:
    other = connections.create_connection("default")
    yield other
    other.close()


def count_seen_by(other: BaseDatabaseWrapper) -> int:
    with other.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {ConversionEvent._meta.db_table}")  # noqa: S608 - a model table name
        (count,) = cursor.fetchone()
    return int(count)


def test_an_event_is_invisible_to_other_connections_until_commit(
    other_connection: BaseDatabaseWrapper,
) -> None:
    with transaction.atomic():
        Order.objects.create(number="A-1")
        assert ConversionEvent.objects.count() == 1
        assert count_seen_by(other_connection) == 0
    assert count_seen_by(other_connection) == 1


def test_a_rollback_leaves_other_connections_nothing_to_see(
    other_connection: BaseDatabaseWrapper,
) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        Order.objects.create(number="A-1")
        raise RuntimeError
    assert count_seen_by(other_connection) == 0


def wait_for_a_blocked_lock(other: BaseDatabaseWrapper) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with other.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
            (waiting,) = cursor.fetchone()
        if waiting:
            return
        time.sleep(0.01)
    pytest.fail("the second transaction never waited for the first")  # pragma: no cover


def test_two_transactions_recording_the_same_event_at_once_make_one_row(
    other_connection: BaseDatabaseWrapper,
) -> None:
    first_inserted = threading.Event()
    release_first = threading.Event()
    results: dict[str, bool] = {}
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with transaction.atomic():
                results["first"] = track("lead_created", event_id="lead-1")
                first_inserted.set()
                release_first.wait(10)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    def second() -> None:
        try:
            first_inserted.wait(10)
            with transaction.atomic():
                # Blocks on the first transaction's uncommitted row, then does nothing.
                results["second"] = track("lead_created", event_id="lead-1")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    first_inserted.wait(10)
    wait_for_a_blocked_lock(other_connection)
    release_first.set()
    for thread in threads:
        thread.join(20)

    assert not errors
    assert results == {"first": True, "second": False}
    assert ConversionEvent.objects.count() == 1
