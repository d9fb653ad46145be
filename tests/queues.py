"""The queues shops run, for the tests: RQ on Redis, Celery on RabbitMQ.

Fixtures switch the test process's Tasks backend (pytest-django's ``settings``; Django
and the django-tasks backport both drop their backends on ``setting_changed``) and
give the worker processes (tests/processes.py) the same queue.

Redis and RabbitMQ are shared with other test runs (another checkout, CI), so a
session uses a Redis database it claimed and a Celery queue named after its pid
(tests/settings.py, tests/celery_app.py), empties them before use and removes them
afterwards. With ``CI=true`` a service that does not answer fails the test; elsewhere
the test is skipped, saying which service to start.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.processes import QueueWorker, start_celery_worker, start_rq_worker

REDIS = ("127.0.0.1", 6379)
RABBITMQ = ("127.0.0.1", 5672)
#: The key in Redis database 0 by which a session claims database N.
CLAIM = "django-openai-capi-tests:claimed-db:{}"


def require(service: str, address: tuple[str, int]) -> None:
    """Skip the test when *service* does not answer, or fail it under CI."""
    try:
        socket.create_connection(address, timeout=2).close()
    except OSError as exc:
        reason = f"{service} is not answering on {address[0]}:{address[1]} ({exc})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must start it (.ci/run)")
        pytest.skip(f"{reason}; start it to run this test")


@dataclass
class QueueBackend:
    """A queue the Tasks framework enqueues to, and how to start its workers."""

    name: str
    start_worker: Callable[..., QueueWorker]
    jobs_waiting: Callable[[], int]


@pytest.fixture(scope="session")
def redis_db() -> Iterator[int]:
    """A Redis database of this session's own, claimed in database 0 and emptied."""
    require("Redis", REDIS)
    import redis

    claims = redis.Redis(*REDIS, db=0)
    pid = str(os.getpid())
    # Claims expire, so that a run killed before its cleanup frees its database.
    db = next(
        (n for n in range(1, 16) if claims.set(CLAIM.format(n), pid, nx=True, ex=3600)),
        None,
    )
    if db is None:  # pragma: no cover - fifteen runs at once
        pytest.fail("Every Redis database (1-15) is claimed by another test run.")
    own = redis.Redis(*REDIS, db=db)
    own.flushdb()
    try:
        yield db
    finally:
        own.flushdb()
        if claims.get(CLAIM.format(db)) == pid.encode():
            claims.delete(CLAIM.format(db))
        own.close()
        claims.close()


@pytest.fixture
def rq_backend(settings: Any, redis_db: int) -> QueueBackend:
    """TASKS on django-tasks-rq, its "default" queue in this session's database."""
    import django_rq

    settings.TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend"}}
    settings.RQ_QUEUES = {
        "default": {"HOST": REDIS[0], "PORT": REDIS[1], "DB": redis_db}
    }
    queue = django_rq.get_queue("default")
    queue.connection.flushdb()
    return QueueBackend("rq", start_rq_worker, lambda: queue.count)


@pytest.fixture(scope="session")
def celery_queue() -> Iterator[str]:
    """This session's broker queue; deleted, with its exchange, at the end."""
    require("RabbitMQ", RABBITMQ)
    from tests.celery_app import app, queue

    try:
        yield queue.name
    finally:
        with app.connection_for_write() as connection:
            channel = connection.default_channel
            queue.bind(channel).delete()
            queue.exchange.bind(channel).delete()


@pytest.fixture
def celery_backend(settings: Any, celery_queue: str) -> Iterator[QueueBackend]:
    """TASKS on django-tasks-fennel, publishing through tests/celery_app.py."""
    from tests.celery_app import app, queue

    settings.TASKS = {"default": {"BACKEND": "django_tasks_fennel.CeleryBackend"}}
    with app.connection_for_write() as connection:
        bound = queue.bind(connection.default_channel)
        bound.declare()
        bound.purge()

        def jobs_waiting() -> int:
            return int(bound.queue_declare(passive=True).message_count)

        # fennel publishes through Celery's current app: this one, not the one of
        # its own that it installs when Django starts.
        app.set_current()
        yield QueueBackend("celery", start_celery_worker, jobs_waiting)


@pytest.fixture(params=["rq", "celery"])
def queue_backend(request: pytest.FixtureRequest) -> QueueBackend:
    """Each queue in turn."""
    backend: QueueBackend = request.getfixturevalue(f"{request.param}_backend")
    return backend
