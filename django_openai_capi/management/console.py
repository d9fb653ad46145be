"""What ``openai_capi_send`` shows: lines for a log, warnings, and a bar on a terminal.

The command decides what to run; this decides how it reads. Under supervisor or
systemd stdout is a pipe, so every line is flushed at once, and the bar is drawn only
on a terminal, never into a log.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.core.management.base import OutputWrapper
from django.db import DatabaseError
from django.utils import timezone

from django_openai_capi.delivery.loop import StopFlag
from django_openai_capi.delivery.report import DeliveryReport
from django_openai_capi.delivery.validation import (
    Check,
    EventVerdict,
    ValidationReport,
)


class Console:
    """The send command's output; at verbosity 0, only what needs attention."""

    def __init__(
        self, stdout: OutputWrapper, stderr: OutputWrapper, *, quiet: bool
    ) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.quiet = quiet
        self.bar = Progress(stdout, enabled=not quiet)
        #: Pixels whose missing key was reported: a loop says it once, not every pass.
        self.warned: set[str] = set()

    def say(self, text: str) -> None:
        if not self.quiet:
            self.stdout.write(text)
            # A pipe would otherwise hold lines back, and the log show them late.
            self.stdout.flush()

    def warn(self, report: DeliveryReport, *, stamp: str = "") -> None:
        for problem in report.problems:
            self.stderr.write(stamp + problem)
        for pixel, why in report.skipped.items():
            # Its events wait for a deploy, not for another pass.
            if pixel not in self.warned:
                self.warned.add(pixel)
                self.stderr.write(stamp + why)

    def passed(self, report: DeliveryReport) -> None:
        """A pass of the loop: a stamped line when it did anything, and its warnings."""
        if report.claimed or report.built or report.not_built or report.reaped:
            self.say(f"{now()} {report.summary()}")
        self.warn(report, stamp=f"{now()} ")

    def retrying(self, error: DatabaseError, interval: float) -> None:
        self.stderr.write(
            f"{now()} Database error, trying again in {interval:g} s: {error}"
        )

    def validated(self, report: ValidationReport, stop: StopFlag) -> None:
        """The end of a validation: why events went unchecked, then the sum."""
        for problem in report.problems():
            self.stderr.write(problem)
        self.stopped(stop)
        self.say(report.summary())

    def stopped(self, stop: StopFlag, detail: str = "") -> None:
        if stop.signal is not None:
            self.say(f"Stopped by {stop.signal.name}{detail}.")

    @contextmanager
    def batches(self, total: int) -> Iterator[Callable[[DeliveryReport], None]]:
        """A pass's ``on_batch``: the bar of the events claimed out of *total*."""

        def on_batch(report: DeliveryReport) -> None:
            self.bar.show(
                report.claimed,
                total,
                f"{report.batches} batches, claimed {report.claimed:,} of "
                + f"{max(total, report.claimed):,}, sent {report.sent:,}",
            )

        try:
            yield on_batch
        finally:
            self.bar.clear()

    @contextmanager
    def checks(
        self, total: int
    ) -> Iterator[Callable[[EventVerdict, ValidationReport], None]]:
        """A validation's ``on_verdict``: each refused event listed, and the bar."""

        def on_verdict(verdict: EventVerdict, report: ValidationReport) -> None:
            if verdict.check is Check.REFUSED:
                self.bar.clear()
                expires = (
                    " (too old: delivery will expire it)" if verdict.too_old else ""
                )
                self.stdout.write(
                    f"Refused: #{verdict.pk} {verdict.event_type} {verdict.event_id}"
                    + f"{expires}: {verdict.message}"
                )
            self.bar.show(
                report.checked,
                total,
                f"checked {report.checked:,} of {max(total, report.checked):,}, "
                + f"refused {report.counts[Check.REFUSED]:,}",
            )

        try:
            yield on_verdict
        finally:
            self.bar.clear()


class Progress:
    """A bar redrawn in place as work is done; nothing at all when not on a terminal."""

    WIDTH = 24
    REDRAW_EVERY = 0.1

    def __init__(self, out: OutputWrapper, *, enabled: bool = True) -> None:
        self.out = out
        self.enabled = enabled and out.isatty()
        self.drawn = 0
        self.drawn_at = 0.0

    def show(self, done: int, total: int, text: str) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        # A redraw per event would cost more than the events when checking a backlog.
        if now - self.drawn_at < self.REDRAW_EVERY and done < total:
            return
        self.drawn_at = now
        total = max(total, done, 1)
        filled = self.WIDTH * done // total
        line = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {text}"
        # Pad over the end of a longer previous line.
        self.out.write("\r" + line.ljust(self.drawn), ending="")
        self.out.flush()
        self.drawn = len(line)

    def clear(self) -> None:
        if self.drawn:
            self.out.write("\r" + " " * self.drawn + "\r", ending="")
            self.out.flush()
            self.drawn = 0


def now() -> str:
    """The local time, as the loop stamps its lines."""
    return f"{timezone.localtime():%Y-%m-%d %H:%M:%S}"
