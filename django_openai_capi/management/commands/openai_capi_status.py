"""``manage.py openai_capi_status``: is delivery healthy, per pixel, and what to do if not.

Made for a person at a shell and for cron or a monitor alike: problems first with their
advice, then a table; ``--json`` for machines; the exit status says which problem
(``health.ExitCode``). Run from cron, it is also what tells of a worker that stopped:
it raises the "stale" alert (``alerts.observe``), which nothing else would.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from django_openai_capi import alerts
from django_openai_capi.conf import conf
from django_openai_capi.health import (
    UNHEALTHY,
    ExitCode,
    Finding,
    Health,
    PixelHealth,
    Problem,
    assess,
    duration,
)
from django_openai_capi.redaction import redact

NO_PIXELS = (
    "No pixels to report: none is configured (OPENAI_CAPI_PIXEL_ID, "
    + "OPENAI_CAPI_PIXEL_API_KEYS) and no events are waiting."
)
COLUMNS = (
    "Pixel",
    "Pending",
    "Oldest due",
    "Paused until",
    "Failed 24h",
    "Expired 24h",
    "Last accepted",
)


class Command(BaseCommand):
    help = (
        "Show whether conversions are flowing, per pixel: events waiting and for how "
        "long, pauses and why, failures in the last 24 hours, the last accepted "
        "request. Exits 0 when healthy, 3 paused, 5 stale (no worker sending), 6 no "
        "key, 4 failed events (with --fail-on-error)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print one JSON document (for monitors and scripts) instead of text.",
        )
        parser.add_argument(
            "--pixel",
            action="append",
            dest="pixels",
            metavar="PIXEL_ID",
            help="Only this pixel; repeat for several. Default: every pixel that is "
            "configured, has events waiting, is paused or had failures.",
        )
        parser.add_argument(
            "--fail-on-error",
            action="store_true",
            help="Exit with status 4 when events failed or expired in the last 24 "
            "hours (by default they are shown, and the exit status ignores them).",
        )
        parser.add_argument(
            "--database",
            default="default",
            help="The database holding the events (default: 'default').",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        using: str = options["database"]
        if using not in connections.settings:
            raise CommandError(f"--database {using!r} is not in DATABASES.")
        fail_on_error: bool = options["fail_on_error"]
        pixel_ids = _pixels(options["pixels"])
        health = assess(pixel_ids=pixel_ids, using=using)
        # Before any output: a stopped worker is emailed about even if writing fails.
        alerts.observe(health, pixel_ids=pixel_ids, using=using)
        if options["json"]:
            self.stdout.write(json.dumps(health.as_json(), indent=2))
        else:
            self.show(health, fail_on_error, quiet=options["verbosity"] < 1)
        code = health.exit_code(fail_on_error=fail_on_error)
        if code is not ExitCode.OK:
            raise CommandError(_verdict(health, code, fail_on_error), returncode=code)

    def show(self, health: Health, fail_on_error: bool, *, quiet: bool) -> None:
        """Problems first, each with its advice, then one line per pixel."""
        findings = _ordered(health.findings)
        if quiet:
            # For cron: silent when all is well, so that it mails only problems.
            counted = [f for f in findings if _counts(f.problem, fail_on_error)]
            for finding in counted:
                self.stdout.write(_finding_text(finding, health))
            return
        self.stdout.write(_headline(health))
        for finding in findings:
            self.stdout.write("")
            self.stdout.write(_finding_text(finding, health))
        if health.pixels:
            self.stdout.write("")
            self.stdout.write(_table(health))
        self.stdout.write("")
        self.stdout.write(_alerts_note())


def _pixels(given: Sequence[str] | None) -> list[str] | None:
    if given is None:
        return None
    pixels = [pixel.strip() for pixel in given]
    if not all(pixels):
        raise CommandError("--pixel needs a Pixel ID.")
    return pixels


def _counts(problem: Problem, fail_on_error: bool) -> bool:
    return problem in UNHEALTHY or (fail_on_error and problem is Problem.FAILED)


def _ordered(findings: Sequence[Finding]) -> list[Finding]:
    """Most urgent first (the order of ``Problem``), then by pixel."""
    rank = {problem: index for index, problem in enumerate(Problem)}
    return sorted(findings, key=lambda f: (rank[f.problem], f.pixel_id))


def _headline(health: Health) -> str:
    checked = _when(health.now)
    if not health.pixels:
        return f"{NO_PIXELS} (checked {checked})"
    sick = sum(not pixel.healthy for pixel in health.pixels)
    total = len(health.pixels)
    if sick:
        needs = "needs" if sick == 1 else "need"
        state = f"{sick} of {total} pixel{'s' if total != 1 else ''} {needs} attention"
    else:
        state = f"all {total} pixel{'s' if total != 1 else ''} healthy"
        if any(pixel.failed_24h or pixel.expired_24h for pixel in health.pixels):
            state += ", with failed events"
    return (
        f"Conversions API delivery, checked {checked}: {state}. Events due for "
        + f"longer than {duration(health.stale_after)} count as stale."
    )


def _finding_text(finding: Finding, health: Health) -> str:
    label = "FAILED EVENTS" if finding.problem is Problem.FAILED else finding.problem
    lines = [f"{finding.pixel_id}: {str(label).upper().replace('_', ' ')}"]
    lines.append(f"  {finding.summary}")
    pause = _pixel(health, finding.pixel_id).pause
    if finding.problem is Problem.PAUSED and pause is not None:
        lines.append(
            f"  Paused until: {_when(pause.until)} ({_relative(pause.until, health.now)})"
        )
        why = pause.reason_label or "unknown"
        if pause.http_status:
            why += f", HTTP {pause.http_status}"
        lines.append(f"  Why: {why}")
    if finding.request_id:
        lines.append(f"  Request ID (for OpenAI support): {finding.request_id}")
    # A pause recorded before pauses kept their advice has none.
    lines.append(f"  What to do: {finding.advice or 'see the error above.'}")
    # Summaries quote the API's errors; they were redacted when stored, and are again
    # here in case a key was configured since.
    return redact("\n".join(lines), limit=100_000)


def _pixel(health: Health, pixel_id: str) -> PixelHealth:
    return next(pixel for pixel in health.pixels if pixel.pixel_id == pixel_id)


def _table(health: Health) -> str:
    rows = [COLUMNS, *(_row(pixel, health.now) for pixel in health.pixels)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(COLUMNS))]
    numeric = {1, 4, 5}
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if column in numeric else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _row(pixel: PixelHealth, now: datetime) -> tuple[str, ...]:
    pending = f"{pixel.pending}{'+' if pixel.pending_capped else ''}"
    oldest = "-" if pixel.oldest_due is None else duration(now - pixel.oldest_due)
    paused = "-" if pixel.pause is None else _when(pixel.pause.until)
    if pixel.last_accepted is None:
        accepted = "never"
    else:
        request_id = pixel.last_accepted_request_id
        accepted = _when(pixel.last_accepted) + (
            f" ({request_id})" if request_id else ""
        )
    return (
        pixel.pixel_id,
        pending,
        oldest,
        paused,
        str(pixel.failed_24h),
        str(pixel.expired_24h),
        accepted,
    )


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def _relative(moment: datetime, now: datetime) -> str:
    if moment >= now:
        return f"in {duration(moment - now)}"
    return f"{duration(now - moment)} ago"


def _alerts_note() -> str:
    if not conf.OPENAI_CAPI_MAIL_ADMINS:
        return (
            "Alerts: emails are off (OPENAI_CAPI_MAIL_ADMINS = False); alerts go to the "
            + "log ('django_openai_capi.alerts') and the delivery_alert signal only."
        )
    if not settings.ADMINS:
        return (
            "Alerts: ADMINS is empty, so alerts go to the log only "
            + "('django_openai_capi.alerts'). Set ADMINS to have them emailed."
        )
    count = len(settings.ADMINS)
    return f"Alerts: emailed to ADMINS ({count} address{'es' if count != 1 else ''})."


def _verdict(health: Health, code: ExitCode, fail_on_error: bool) -> str:
    """The CommandError's message: which pixels have which problems, and the code."""
    problems = [
        f"{finding.pixel_id} {finding.problem}"
        for finding in _ordered(health.findings)
        if _counts(finding.problem, fail_on_error)
    ]
    return f"{code.name.lower()} (exit status {int(code)}): " + ", ".join(problems)
