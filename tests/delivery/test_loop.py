"""The worker loop and its stop flag, without a command around them.

``run_loop`` runs passes until it is stopped, waits only after a pass that claimed
nothing, and outlives a database that went away; ``StopFlag`` turns SIGTERM and Ctrl-C
into a stop between batches, and a second Ctrl-C into a stop at once.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import DatabaseError, OperationalError, connections
from django.utils import timezone

from django_openai_capi.delivery import loop
from django_openai_capi.delivery.loop import StopFlag, run_loop
from django_openai_capi.delivery.report import DeliveryReport
from django_openai_capi.models import ConversionEvent


class StopAfterWaits(StopFlag):
    """A stop flag that records the waits asked of it, and stops after *waits* of them."""

    def __init__(self, waits: int) -> None:
        super().__init__()
        self.left = waits
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.left -= 1
        if self.left == 0:
            self.signal = signal.SIGTERM


def passes(*reports: DeliveryReport) -> Callable[[], DeliveryReport]:
    """A send pass that returns *reports* one after the other."""
    queue = list(reports)
    return lambda: queue.pop(0)


def claimed(count: int) -> DeliveryReport:
    return DeliveryReport(batches=1 if count else 0, claimed=count, sent=count)


def test_a_pass_that_claimed_is_followed_at_once_and_an_idle_one_by_a_wait() -> None:
    stop = StopAfterWaits(2)

    total = run_loop(
        passes(claimed(2), claimed(1), claimed(0), claimed(3), claimed(0)),
        stop=stop,
        interval=7,
    )

    assert stop.waits == [7, 7]
    assert (total.batches, total.claimed, total.sent) == (3, 6, 6)


def test_each_pass_is_reported_as_it_ends() -> None:
    seen: list[int] = []

    run_loop(
        passes(claimed(2), claimed(0)),
        stop=StopAfterWaits(1),
        interval=1,
        on_pass=lambda report: seen.append(report.claimed),
    )

    assert seen == [2, 0]


def test_the_total_keeps_pauses_and_missing_keys_as_the_last_pass_found_them() -> None:
    later = timezone.now() + timedelta(hours=1)
    first = DeliveryReport(paused={"a": later}, skipped={"b": "no key"})
    second = DeliveryReport(paused={"c": later}, problems=["c: HTTP 401"])

    total = run_loop(passes(first, second), stop=StopAfterWaits(2), interval=1)

    assert total.paused == {"c": later}
    assert total.skipped == {}
    assert total.problems == ["c: HTTP 401"]


def test_a_loop_asked_to_stop_before_it_starts_runs_no_pass() -> None:
    stop = StopAfterWaits(1)
    stop.signal = signal.SIGTERM

    total = run_loop(passes(), stop=stop, interval=1)

    assert total == DeliveryReport()
    assert stop.waits == []


def test_each_pass_starts_by_dropping_connections_the_database_may_have_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(loop, "close_old_connections", lambda: calls.append("close"))

    def send_pass() -> DeliveryReport:
        calls.append("pass")
        return claimed(0)

    run_loop(send_pass, stop=StopAfterWaits(2), interval=1)

    assert calls == ["close", "pass", "close", "pass"]


@pytest.mark.django_db(transaction=True)
def test_a_database_error_closes_the_connection_and_the_pass_is_tried_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Only the error may close it here (the tests' CONN_MAX_AGE = 0 closes it at
    # every pass otherwise).
    monkeypatch.setattr(loop, "close_old_connections", lambda: None)
    errors: list[DatabaseError] = []
    connected: list[bool] = []

    def send_pass() -> DeliveryReport:
        connected.append(connections["default"].connection is not None)
        # The first pass opens a connection the server then drops; the next one
        # works, and the one after finds nothing more.
        ConversionEvent.objects.exists()
        if len(connected) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return claimed(1 if len(connected) == 2 else 0)

    stop = StopAfterWaits(2)
    total = run_loop(send_pass, stop=stop, interval=3, on_database_error=errors.append)

    assert [str(error) for error in errors] == [
        "server closed the connection unexpectedly"
    ]
    assert connected[1:] == [False, True]  # closed after the error, kept after
    assert stop.waits == [3, 3]
    assert total.claimed == 1


# The stop flag.


def test_a_signal_cuts_the_idle_wait_short() -> None:
    with StopFlag() as stop:
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
        started = time.monotonic()
        stop.sleep(60)

    assert time.monotonic() - started < 5
    assert stop.signal is signal.SIGTERM


def test_a_second_ctrl_c_stops_at_once_and_the_handlers_are_put_back() -> None:
    before = signal.getsignal(signal.SIGINT)

    with pytest.raises(KeyboardInterrupt), StopFlag() as stop:
        signal.raise_signal(signal.SIGINT)
        assert stop()
        signal.raise_signal(signal.SIGINT)

    assert signal.getsignal(signal.SIGINT) is before


def test_outside_the_main_thread_the_signal_handlers_are_left_alone() -> None:
    seen: list[object] = []

    def in_thread() -> None:
        with StopFlag() as stop:
            seen.append(signal.getsignal(signal.SIGTERM))
            seen.append(stop())

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()

    assert seen == [signal.getsignal(signal.SIGTERM), False]
