"""Worker processes for the crash and concurrency tests.

A worker is ``manage.py openai_capi_send``, or a queue's worker (RQ, Celery) running
the Tasks-framework task, in a process of its own, on the test database its parent
created (tests/settings.py reads ``CAPI_TEST_*``), sending to a fake API the test
serves on loopback.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from django.conf import settings
from django.db import connections

ROOT = Path(__file__).resolve().parent.parent


def worker_env(endpoint: str, **overrides: object) -> dict[str, str]:
    """The environment of a worker: the test database, *endpoint*, and settings."""
    env = dict(os.environ)
    env.update(
        # The session's own: a contrib session's workers load its project. (Under
        # override_settings, the settings fixture, Django's holder of them says None.)
        DJANGO_SETTINGS_MODULE=settings.SETTINGS_MODULE
        or os.environ["DJANGO_SETTINGS_MODULE"],
        CAPI_TEST_DATABASE_NAME=str(connections["default"].settings_dict["NAME"]),
        CAPI_TEST_ENDPOINT=endpoint,
        PYTHONPATH=str(ROOT),
    )
    env.update(
        {f"CAPI_TEST_{name.upper()}": str(value) for name, value in overrides.items()}
    )
    return env


def start_worker(
    *args: str, endpoint: str, **overrides: object
) -> subprocess.Popen[str]:
    """Start ``openai_capi_send`` with *args*; its output is kept for assertions."""
    return subprocess.Popen(
        [sys.executable, "-m", "django", "openai_capi_send", "--skip-checks", *args],
        cwd=ROOT,
        env=worker_env(endpoint, **overrides),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )



@dataclass
class QueueWorker:
    """A queue's worker process, and the file its log goes to."""

    process: subprocess.Popen[bytes]
    log: IO[str]

    def kill(self) -> None:
        """SIGKILL the worker and every process it started.

        The queue workers run their jobs in children (RQ's work horse); the worker
        leads a process group of its own (a session), which goes whole.
        """
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()


def start_rq_worker(*, endpoint: str, name: str, **overrides: object) -> QueueWorker:
    """django-rq's ``rqworker`` on the "default" queue, running django-tasks-rq's jobs."""
    return _start_queue_worker(
        [
            "-m",
            "django",
            "rqworker",
            "default",
            "--job-class",
            "django_tasks_rq.Job",
            "--name",
            f"{name}-{os.getpid()}",
        ],
        endpoint=endpoint,
        tasks_backend="rq",
        **overrides,
    )


def start_celery_worker(
    *, endpoint: str, name: str, **overrides: object
) -> QueueWorker:
    """A ``celery worker`` of tests/celery_app.py on this session's queue.

    Celery's default pool (prefork) with one child, which runs one task at a time
    while the main process talks to the broker; mingle, gossip and heartbeats are
    off, as they only cost start-up time here.
    """
    return _start_queue_worker(
        [
            "-m",
            "celery",
            "-A",
            "tests.celery_app",
            "worker",
            "-Q",
            "default",
            "--concurrency",
            "1",
            "--hostname",
            f"{name}-{os.getpid()}@%h",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            "--loglevel",
            "INFO",
        ],
        endpoint=endpoint,
        tasks_backend="celery",
        **overrides,
    )


def _start_queue_worker(
    args: list[str], *, endpoint: str, **overrides: object
) -> QueueWorker:
    env = worker_env(endpoint, **overrides)
    # The session's own Redis database and Celery queue (tests/settings.py).
    env["CAPI_TEST_REDIS_DB"] = str(settings.RQ_QUEUES["default"]["DB"])
    env["CAPI_TEST_CELERY_QUEUE"] = settings.CAPI_TEST_CELERY_QUEUE
    # A file, not a pipe: a worker that logs more than a pipe holds while nobody
    # reads it would block.
    log = tempfile.TemporaryFile("w+")
    process = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return QueueWorker(process, log)


@contextmanager
def running(*workers: QueueWorker) -> Iterator[None]:
    """Kill *workers* on the way out, whatever happened: none outlives its test."""
    try:
        yield
    except BaseException:
        # Shown with the failure (pytest prints captured output): what they did.
        for worker in workers:
            print(f"--- {' '.join(worker.process.args[1:4])}:\n{worker.output()}")  # type: ignore[index]
        raise
    finally:
        for worker in workers:
            worker.kill()
            worker.log.close()
