"""``manage.py openai_capi_cleanup``: delete old finished outbox rows, in batches."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from django_openai_capi.conf import conf
from django_openai_capi.maintenance.cleanup import BATCH_SIZE, CleanupReport, cleanup


class Command(BaseCommand):
    help = (
        "Delete sent, expired and cancelled conversion events, and delivery batch "
        "records, created more than --days days ago, a batch at a time. Pending and "
        "sending events are never deleted; failed ones only with --include-failed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            metavar="N",
            help="Delete rows created more than N days ago "
            "(default: the OPENAI_CAPI_RETENTION_DAYS setting).",
        )
        parser.add_argument(
            "--include-failed",
            action="store_true",
            help="Delete old failed events too. They are kept by default: a failed "
            "event is what a person still has to look at, and may resend from the admin.",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=BATCH_SIZE,
            help=f"Rows per delete, each its own transaction (default {BATCH_SIZE}).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count what would be deleted, delete nothing.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days = _days(options["days"])
        batch_size: int = options["batch_size"]
        if batch_size < 1:
            raise CommandError(f"--batch-size must be at least 1, got {batch_size}.")
        report = cleanup(
            days=days,
            include_failed=options["include_failed"],
            batch_size=batch_size,
            dry_run=options["dry_run"],
        )
        self.stdout.write(_summary(report, days))


def _days(given: int | None) -> int:
    if given is not None:
        if given < 1:
            raise CommandError(f"--days must be at least 1, got {given}.")
        return given
    # Read as it is configured: a wrong value is reported by the checks (E017), and
    # must not turn into a cleanup of everything here.
    configured: object = conf.OPENAI_CAPI_RETENTION_DAYS
    if (
        isinstance(configured, bool)
        or not isinstance(configured, int)
        or configured < 1
    ):
        raise CommandError(
            f"OPENAI_CAPI_RETENTION_DAYS is {configured!r}: set it to a whole number of "
            + "days (at least 1), or pass --days."
        )
    return configured


def _summary(report: CleanupReport, days: int) -> str:
    verb = "Would delete" if report.dry_run else "Deleted"
    kept = (
        "pending, sending and failed events kept"
        if "failed" not in report.statuses
        else "pending and sending events kept"
    )
    age = "1 day" if days == 1 else f"{days} days"
    return (
        f"{verb} {report.events} events ({', '.join(report.statuses)}) and "
        + f"{report.batches} delivery batches created before "
        + f"{timezone.localtime(report.cutoff):%Y-%m-%d %H:%M %Z} ({age} ago); "
        + f"{kept}."
    )
