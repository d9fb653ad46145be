"""``manage.py openai_capi_send``: deliver what is due, once or in a loop.

Any number of copies may run at once, on any number of hosts: each batch is claimed
before it is sent, and the claim is all they need to agree on. SIGTERM or Ctrl-C lets
the batch in flight finish and be recorded, then the command exits with status 0.

Run once (from cron), it exits with the status of what needs a person
(``health.ExitCode``): 3 when a pixel is paused, 5 when events had been due longer
than ``OPENAI_CAPI_STALE_AFTER`` when it started (no worker was keeping up), 6 when a
pixel has no key, and with ``--fail-on-error`` 4 when events failed or expired in this
run. With ``--loop`` it keeps running, and the same conditions are logged at ERROR
(and ADMINS emailed) once per change, by ``alerts.py``.
"""

from __future__ import annotations

from typing import Any, TypedDict

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_openai_capi import alerts, health
from django_openai_capi.api import spec
from django_openai_capi.conf import conf
from django_openai_capi.delivery import DeliveryReport, send_pending
from django_openai_capi.delivery.loop import StopFlag, run_loop
from django_openai_capi.delivery.validation import validate_due
from django_openai_capi.delivery.worker import due_count
from django_openai_capi.management.console import Console

DEFAULT_INTERVAL = 5.0
NOTHING_HALF_DONE = "; no batch was left half-done"
DISABLED = "Sending is disabled (OPENAI_CAPI_SEND_ENABLED = False): nothing sent."


class Scope(TypedDict):
    """What a pass may take, by the options: the same for sending and validating."""

    pixel_ids: list[str] | None
    batch_size: int | None
    max_batches: int | None
    using: str


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
            "--fail-on-error",
            action="store_true",
            help="Exit with status 4 when events failed or expired in this run (they "
            + "will not be sent). Without it, only a paused pixel (3), events due for "
            + "too long (5) and a pixel with no key (6) make the exit status non-zero.",
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
        self.scope: Scope = {
            "pixel_ids": _pixels(options["pixels"]),
            "batch_size": batch_size,
            "max_batches": _at_least(options["max_batches"], "--max-batches", 1),
            "using": options["database"],
        }
        interval = _interval(options["interval"], loop=options["loop"])
        self.fail_on_error: bool = options["fail_on_error"]
        if options["validate_only"] and options["loop"]:
            raise CommandError(
                "--validate-only checks the due events once and changes nothing, so "
                + "a --loop would check the same events again and again: use one or "
                + "the other."
            )
        if not conf.OPENAI_CAPI_SEND_ENABLED:
            self.stdout.write(DISABLED)
            return
        self.console = Console(self.stdout, self.stderr, quiet=options["verbosity"] < 1)
        try:
            with StopFlag() as self.stop:
                if options["validate_only"]:
                    self.validate()
                elif options["loop"]:
                    self.loop(interval)
                else:
                    self.once()
        except KeyboardInterrupt:
            raise CommandError(
                "Interrupted: a batch in flight stays claimed until its lease "
                + "expires, then goes back to the queue with the same ids.",
                returncode=health.ExitCode.INTERRUPTED,
            ) from None

    def once(self) -> None:
        # Before sending: afterwards the old events are gone, and so is the evidence
        # that nothing sent them until now.
        stale = self.watch_stale()
        for finding in stale.values():
            self.stderr.write(f"{finding.summary} {finding.advice}")
        report = self.send()
        self.console.say(report.summary())
        self.console.warn(report)
        self.console.stopped(self.stop, NOTHING_HALF_DONE)
        findings = self.findings(report, stale)
        code = health.exit_code(
            (finding.problem for finding in findings),
            fail_on_error=self.fail_on_error,
        )
        if code:
            counted = [
                finding.summary
                for finding in findings
                if finding.problem in health.UNHEALTHY or self.fail_on_error
            ]
            raise CommandError(
                f"{code.name.lower()} (exit status {int(code)}): " + " ".join(counted),
                returncode=code,
            )

    def watch_stale(self) -> dict[str, health.Finding]:
        """Tell of events due for too long (once per change), and return them."""
        scope = self.scope
        stale = health.stale(pixel_ids=scope["pixel_ids"], using=scope["using"])
        alerts.stale_seen(stale, pixel_ids=scope["pixel_ids"], using=scope["using"])
        return stale

    def findings(
        self, report: DeliveryReport, stale: dict[str, health.Finding]
    ) -> list[health.Finding]:
        """What this run leaves for a person: the reasons for a non-zero exit.

        The pixels' state is the assessment's, as the status command and the health
        check read it: a pixel paused by an earlier run has no due events, so this run
        never reached it, and it is paused all the same. Two things only this run
        knows are added: the events that were due too long when it started (it has
        sent them since), and what failed in it.
        """
        now = health.assess(
            pixel_ids=self.scope["pixel_ids"], using=self.scope["using"]
        )
        found = [f for f in now.findings if f.problem is not health.Problem.FAILED]
        stale_now = {f.pixel_id for f in found if f.problem is health.Problem.STALE}
        found += [f for pixel, f in stale.items() if pixel not in stale_now]
        lost = report.failed + report.expired + report.build.failed
        lost += report.build.expired
        if lost:
            found.append(
                health.Finding(
                    "",
                    health.Problem.FAILED,
                    f"{lost} events failed or expired in this run.",
                    "",
                )
            )
        return found

    def loop(self, interval: float) -> None:
        self.console.say(
            f"Sending due events; looking again every {interval:g} s when there are "
            + "none. Stop with SIGTERM or Ctrl-C."
        )
        total = run_loop(
            self.loop_pass,
            stop=self.stop,
            interval=interval,
            using=self.scope["using"],
            on_pass=self.console.passed,
            on_database_error=lambda exc: self.console.retrying(exc, interval),
        )
        self.console.stopped(self.stop, NOTHING_HALF_DONE)
        self.console.say(f"Total: {total.summary()}")

    def loop_pass(self) -> DeliveryReport:
        # A loop never exits for a problem: the alerts log it at ERROR, and tell
        # ADMINS, once per change.
        self.watch_stale()
        return self.send()

    def send(self) -> DeliveryReport:
        total = due_count(**self.scope) if self.console.bar.enabled else 0
        with self.console.batches(total) as on_batch:
            return send_pending(**self.scope, should_stop=self.stop, on_batch=on_batch)

    def validate(self) -> None:
        total = due_count(**self.scope, paused=True) if self.console.bar.enabled else 0
        with self.console.checks(total) as on_verdict:
            report = validate_due(
                **self.scope, should_stop=self.stop, on_verdict=on_verdict
            )
        self.console.validated(report, self.stop)


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
