"""``manage.py openai_capi_send``: deliver what is due, once or in a loop.

Any number of copies may run at once, on any number of hosts: each batch is claimed
before it is sent, and the claim is all they need to agree on. SIGTERM or Ctrl-C lets
the batch in flight finish and be recorded, then the command exits with status 0.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Sequence
from types import FrameType
from typing import Any

from django.core.management.base import (
    BaseCommand,
    CommandError,
    CommandParser,
    OutputWrapper,
)
from django.db import DatabaseError, close_old_connections, connections
from django.utils import timezone

from django_openai_capi.api import spec
from django_openai_capi.conf import conf
from django_openai_capi.delivery import DeliveryReport, send_pending
from django_openai_capi.delivery.validation import (
    Check,
    due_count,
    iter_validate_pending,
)
from django_openai_capi.models import ConversionEvent, PixelPause

DEFAULT_INTERVAL = 5.0
NOTHING_HALF_DONE = "; no batch was left half-done"
DISABLED = "Sending is disabled (OPENAI_CAPI_SEND_ENABLED = False): nothing sent."


class Command(BaseCommand):
    help = (
        "Send the conversion events that are due to the Conversions API, batch by "
        "batch, then exit; with --loop, keep sending as events come. Safe to run as "
        "many copies as you like. SIGTERM or Ctrl-C stops after the batch in flight."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--loop",
            action="store_true",
            help="Keep running: send, and when nothing was due, wait --interval "
            "seconds and look again.",
        )
        parser.add_argument(
            "--interval",
            type=float,
            metavar="SECONDS",
            help=f"With --loop: the wait after a pass that found nothing to send "
            f"(default {DEFAULT_INTERVAL:g}).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            metavar="N",
            help=f"Events per request, 1 to {spec.MAX_EVENTS_PER_REQUEST} "
            "(default: OPENAI_CAPI_BATCH_SIZE).",
        )
        parser.add_argument(
            "--max-batches",
            type=int,
            metavar="N",
            help="Stop after N batches (with --loop: per pass). Default: until "
            "nothing is due.",
        )
        parser.add_argument(
            "--pixel",
            action="append",
            dest="pixels",
            metavar="PIXEL_ID",
            help="Only this pixel's events; repeat for several. Default: all pixels.",
        )
        parser.add_argument(
            "--validate-only",
            action="store_true",
            help="Check the due events against the API with validate_only requests and "
            "list those it would refuse. Changes no event; OpenAI records nothing.",
        )
        parser.add_argument(
            "--database",
            default="default",
            help="The database holding the events (default: 'default').",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size = _at_least(options["batch_size"], "--batch-size", 1)
        if batch_size is not None and batch_size > spec.MAX_EVENTS_PER_REQUEST:
            raise CommandError(
                f"--batch-size must be at most {spec.MAX_EVENTS_PER_REQUEST} (the "
                + f"API's limit per request), got {batch_size}."
            )
        max_batches = _at_least(options["max_batches"], "--max-batches", 1)
        interval = _interval(options["interval"], loop=options["loop"])
        pixels = _pixels(options["pixels"])
        if options["validate_only"] and options["loop"]:
            raise CommandError(
                "--validate-only checks the due events once and changes nothing, so "
                + "a --loop would check the same events again and again: use one or "
                + "the other."
            )
        if not conf.OPENAI_CAPI_SEND_ENABLED:
            self.stdout.write(DISABLED)
            return
        run = _Run(
            command=self,
            pixels=pixels,
            batch_size=batch_size,
            max_batches=max_batches,
            using=options["database"],
            quiet=options["verbosity"] < 1,
        )
        try:
            with StopFlag() as stop:
                if options["validate_only"]:
                    run.validate(stop)
                elif options["loop"]:
                    run.loop(stop, interval)
                else:
                    run.once(stop)
        except KeyboardInterrupt:
            raise CommandError(
                "Interrupted: a batch in flight stays claimed until its lease "
                + "expires, then goes back to the queue with the same ids.",
                returncode=130,
            ) from None


def _at_least(value: int | None, option: str, minimum: int) -> int | None:
    if value is not None and value < minimum:
        raise CommandError(f"{option} must be at least {minimum}, got {value}.")
    return value


def _interval(value: float | None, *, loop: bool) -> float:
    if value is None:
        return DEFAULT_INTERVAL
    if not loop:
        raise CommandError("--interval only applies with --loop.")
    if not value > 0:
        raise CommandError(f"--interval must be more than 0 seconds, got {value:g}.")
    return value


def _pixels(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    if not all(value.strip() for value in values):
        raise CommandError("--pixel needs a Pixel ID.")
    return [value.strip() for value in values]


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


class Progress:
    """A bar redrawn in place after each batch, on a terminal only (not in logs)."""

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


class _Run:
    def __init__(
        self,
        *,
        command: Command,
        pixels: Sequence[str] | None,
        batch_size: int | None,
        max_batches: int | None,
        using: str,
        quiet: bool,
    ) -> None:
        self.stdout = command.stdout
        self.stderr = command.stderr
        self.pixels = pixels
        self.batch_size = batch_size
        self.max_batches = max_batches
        self.using = using
        self.quiet = quiet
        self.progress = Progress(command.stdout, enabled=not quiet)

    @property
    def limit(self) -> int | None:
        """Events one pass may take at most, by --max-batches."""
        if self.max_batches is None:
            return None
        return self.max_batches * (self.batch_size or conf.OPENAI_CAPI_BATCH_SIZE)

    def say(self, text: str) -> None:
        if not self.quiet:
            self.stdout.write(text)
            # Under supervisor or systemd stdout is a pipe: without a flush, lines
            # would reach the log minutes late.
            self.stdout.flush()

    def once(self, stop: StopFlag) -> None:
        report = self.send(stop)
        self.say(report.summary())
        self.problems(report, set(), stamp="")
        self.stopped(stop, detail=NOTHING_HALF_DONE)
        if report.skipped:
            raise CommandError(
                "Events of "
                + ", ".join(repr(pixel) for pixel in report.skipped)
                + " were not sent: no Conversions API key (see above)."
            )

    def loop(self, stop: StopFlag, interval: float) -> None:
        total = DeliveryReport()
        warned: set[str] = set()
        self.say(
            f"Sending due events; looking again every {interval:g} s when there are "
            + "none. Stop with SIGTERM or Ctrl-C."
        )
        while not stop():
            # A long-running process must not keep a connection the database dropped.
            close_old_connections()
            try:
                report = self.send(stop)
            except DatabaseError as exc:
                self.stderr.write(
                    f"{_now()} Database error, trying again in {interval:g} s: {exc}"
                )
                connections[self.using].close()
                stop.sleep(interval)
                continue
            total.merge(report)
            # Pauses and missing keys as they stand now, not as they were at some pass.
            total.paused, total.skipped = report.paused, report.skipped
            if report.claimed or report.built or report.not_built or report.reaped:
                self.say(f"{_now()} {report.summary()}")
            self.problems(report, warned, stamp=f"{_now()} ")
            if not report.claimed:
                stop.sleep(interval)
        self.stopped(stop, detail=NOTHING_HALF_DONE)
        self.say(f"Total: {total.summary()}")

    def send(self, stop: StopFlag) -> DeliveryReport:
        total = self.due_total() if self.progress.enabled else 0

        def on_batch(report: DeliveryReport) -> None:
            self.progress.show(
                report.claimed,
                total,
                f"{report.batches} batches, claimed {report.claimed:,} of "
                + f"{max(total, report.claimed):,}, sent {report.sent:,}",
            )

        try:
            return send_pending(
                pixel_ids=self.pixels,
                batch_size=self.batch_size,
                max_batches=self.max_batches,
                using=self.using,
                should_stop=stop,
                on_batch=on_batch,
            )
        finally:
            self.progress.clear()

    def due_total(self) -> int:
        """Events a pass would claim now, for the bar: a guess, never a promise."""
        now = timezone.now()
        paused = PixelPause.objects.using(self.using).filter(paused_until__gt=now)
        due = ConversionEvent.objects.using(self.using).due(now=now)
        if self.pixels is not None:
            due = due.filter(pixel_id__in=self.pixels)
        count = due.exclude(pixel_id__in=paused.values("pixel_id")).count()
        return count if self.limit is None else min(count, self.limit)

    def problems(self, report: DeliveryReport, warned: set[str], *, stamp: str) -> None:
        for problem in report.problems:
            self.stderr.write(stamp + problem)
        for pixel, why in report.skipped.items():
            # In a loop, once per pixel: its events wait for a deploy, not for us.
            if pixel not in warned:
                warned.add(pixel)
                self.stderr.write(stamp + why)

    def stopped(self, stop: StopFlag, *, detail: str = "") -> None:
        if stop.signal is not None:
            self.say(f"Stopped by {stop.signal.name}{detail}.")

    def validate(self, stop: StopFlag) -> None:
        total = self.validate_total() if self.progress.enabled else 0
        counts: Counter[Check] = Counter()
        reasons: Counter[str] = Counter()
        for verdict in iter_validate_pending(
            pixel_ids=self.pixels,
            limit=self.limit,
            batch_size=self.batch_size,
            using=self.using,
        ):
            counts[verdict.check] += 1
            if verdict.check is Check.REFUSED:
                self.progress.clear()
                expires = (
                    " (too old: delivery will expire it)" if verdict.too_old else ""
                )
                self.stdout.write(
                    f"Refused: #{verdict.pk} {verdict.event_type} {verdict.event_id}"
                    + f"{expires}: {verdict.message}"
                )
            elif verdict.check is Check.NOT_CHECKED:
                reasons[verdict.message] += 1
            checked = counts.total()
            self.progress.show(
                checked,
                total,
                f"checked {checked:,} of {max(total, checked):,}, refused "
                + f"{counts[Check.REFUSED]:,}",
            )
            if stop():
                break
        self.progress.clear()
        for reason, count in reasons.items():
            self.stderr.write(f"{count} not checked: {reason}")
        unbuilt = self.unbuilt()
        if unbuilt:
            self.stderr.write(
                f"{unbuilt} pending events are not built yet, so not checked: delivery "
                + "builds them first (run openai_capi_send)."
            )
        self.stopped(stop)
        self.say(
            f"Checked with validate_only: {counts[Check.OK]} ok, "
            + f"{counts[Check.REFUSED]} refused, {counts[Check.NOT_CHECKED]} not "
            + "checked. No event was changed, and OpenAI recorded nothing."
        )

    def unbuilt(self) -> int:
        query = ConversionEvent.objects.using(self.using).unbuilt()
        if self.pixels is not None:
            query = query.filter(pixel_id__in=self.pixels)
        return query.count()

    def validate_total(self) -> int:
        count = due_count(pixel_ids=self.pixels, using=self.using)
        return count if self.limit is None else min(count, self.limit)


def _now() -> str:
    return f"{timezone.localtime():%Y-%m-%d %H:%M:%S}"
