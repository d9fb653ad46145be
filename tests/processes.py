"""Worker processes for the crash and concurrency tests.

A worker is ``manage.py openai_capi_send``, or a queue's worker (RQ, Celery) running
the Tasks-framework task, in a process of its own, on the test database its parent
created (tests/settings.py reads ``CAPI_TEST_*``), sending to a fake API the test
serves on loopback.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
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

#: Linux's prctl(2) option that signals a process when its parent dies.
PR_SET_PDEATHSIG = 1
# Looked up here, in the test process: the child between fork and exec must not load
# anything (another thread may hold the loader's lock at the fork).
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def die_with_parent() -> None:
    """Run in a worker before it starts: SIGKILL it if the test process dies.

    Fixtures and ``running()`` stop workers when a test ends, however it ends; a
    killed pytest runs neither, and its workers would go on claiming from, and
    sending to, what is left. Linux only, as the tests' /proc reading is.
    """
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def worker_env(endpoint: str, **overrides: object) -> dict[str, str]:
    """The environment of a worker: the test database, *endpoint*, and settings."""
    env = dict(os.environ)
    env.update(
        # The session's own (pytest-django sets it from --ds or the ini file): a
        # contrib session's workers load its project. Not settings.SETTINGS_MODULE,
        # which is None under override_settings.
        DJANGO_SETTINGS_MODULE=os.environ["DJANGO_SETTINGS_MODULE"],
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
        preexec_fn=die_with_parent,
    )


@dataclass
class QueueWorker:
    """A queue's worker process, and the file its log goes to."""

    process: subprocess.Popen[bytes]
    log: IO[str]
    #: What its log says once it listens to its queue.
    ready_line: str

    def is_ready(self) -> bool:
        return self.ready_line in self.output()

    def kill(self) -> None:
        """SIGKILL the worker and every process it started, as when its host dies.

        The queue workers run their jobs in children: RQ's work horse, in a process
        group of its own, and Celery's pool. The whole tree is listed before the first
        signal, as a child whose parent died is adopted out of it.
        """
        for pid in [self.process.pid, *descendants(self.process.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()


def descendants(pid: int) -> list[int]:
    """The processes *pid* started, and theirs, from Linux's /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # "pid (comm) state ppid ...": comm may hold spaces, so after its ")".
            fields = stat.read_text().rpartition(")")[2].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


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
        ready_line="Listening on default",
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
        ready_line=" ready.",
        tasks_backend="celery",
        **overrides,
    )


def _start_queue_worker(
    args: list[str], *, endpoint: str, ready_line: str, **overrides: object
) -> QueueWorker:
    env = worker_env(endpoint, **overrides)
    # The session's own Redis database and Celery queue (tests/settings.py).
    env["CAPI_TEST_REDIS_DB"] = str(settings.RQ_QUEUES["default"]["DB"])
    env["CAPI_TEST_CELERY_QUEUE"] = settings.CAPI_TEST_CELERY_QUEUE
    # A file, not a pipe: a worker that logs more than a pipe holds while nobody
    # reads it would block.
    log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed by running()
    process = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent,
    )
    return QueueWorker(process, log, ready_line)


@contextmanager
def running(*workers: QueueWorker) -> Iterator[None]:
    """Kill *workers* on the way out, whatever happened: none outlives its test."""
    try:
        yield
    except BaseException:
        # Shown with the failure (pytest prints captured output): what they did.
        for worker in workers:
            print(f"--- worker {worker.process.pid}:\n{worker.output()}")
        raise
    finally:
        for worker in workers:
            worker.kill()
            worker.log.close()


def catches(pid: int, signum: int) -> bool:
    """Whether process *pid* has a handler of its own for *signum* (Linux's /proc).

    A worker command stops cleanly on SIGTERM only once its handler is in place; a
    test waits for that rather than for a while.
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False  # pragma: no cover - every Linux status has the line


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def answers(port: int) -> bool:
    """Whether something accepts connections on loopback *port*."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True
