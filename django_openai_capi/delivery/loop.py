"""Delivery until asked to stop: the worker loop and its stop flag.

``manage.py openai_capi_send --loop`` is :func:`run_loop` with printing around it, in
the foreground of a process that supervisor, systemd or Kubernetes stops with SIGTERM.
The loop never cuts a request off: a stop is asked for between batches, so the batch in
flight is finished and its outcome recorded first.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from django.db import DatabaseError, close_old_connections, connections

from django_openai_capi.delivery.report import DeliveryReport


class StopFlag:
    """Raised by SIGTERM or SIGINT: the batch in flight finishes, then the run stops.

    The handlers only set a flag: a request is never cut off halfway, and the run's
    outcome is always recorded. A second Ctrl-C stops at once (the batch in flight
    is then taken back by another worker when its lease expires).
    """

    def __init__(self) -> None:
        self.signal: signal.Signals | None = None
        self._previous: dict[signal.Signals, Any] = {}

    def __call__(self) -> bool:
        return self.signal is not None

    def __enter__(self) -> StopFlag:
        # Python delivers signals to the main thread only; a run in another thread
        # (a test, a task) keeps the handlers it has.
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum)

    def sleep(self, seconds: float) -> None:
        """Wait *seconds*, or less if a stop is asked for meanwhile."""
        # Short naps rather than one wait on an Event: a signal handler that sets an
        # Event can deadlock with the wait it interrupts.
        deadline = time.monotonic() + seconds
        while not self() and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.1))


def run_loop(
    send_pass: Callable[[], DeliveryReport],
    *,
    stop: StopFlag,
    interval: float,
    using: str = "default",
    on_pass: Callable[[DeliveryReport], None] = lambda report: None,
    on_database_error: Callable[[DatabaseError], None] = lambda exc: None,
) -> DeliveryReport:
    """Run *send_pass* (one pass of ``send_pending``) until *stop*; return the total.

    After a pass that claimed nothing, waits *interval* seconds, or less if stopped
    meanwhile; after one that claimed, goes straight on, as more may be due. A
    database error (a restart, a failover) does not end the loop: *on_database_error*
    hears of it, the connection is closed, and the pass is tried again after
    *interval*. The total's paused and skipped pixels are the last pass's: as they
    stand now, not as they were at some pass.
    """
    total = DeliveryReport()
    while not stop():
        # A long-running process must not keep a connection the database dropped.
        close_old_connections()
        try:
            report = send_pass()
        except DatabaseError as exc:
            on_database_error(exc)
            connections[using].close()
            stop.sleep(interval)
            continue
        total.merge(report)
        total.paused, total.skipped = report.paused, report.skipped
        on_pass(report)
        if not report.claimed:
            stop.sleep(interval)
    return total
