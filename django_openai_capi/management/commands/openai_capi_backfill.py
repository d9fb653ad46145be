"""``manage.py openai_capi_backfill --since DATE``: record the events missing since a date.

Exit status (``health.ExitCode``): 0 when every object was recorded (or skipped, or
already there); 4 when objects failed (a hook raised, or, with ``OPENAI_CAPI_DISPATCH``
"inline", their build failed on the commit), the others recorded; 1 when a model could
not be walked at all, or for a bad option.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Model
from django.utils import timezone

from django_openai_capi.health import ExitCode
from django_openai_capi.maintenance.backfill import (
    BATCH_SIZE,
    BackfillReport,
    backfill,
    backfill_warnings,
    registered_model,
)


class Command(BaseCommand):
    help = (
        "Record the conversion events missing for objects of registered models since "
        "a date, as their saves would have. Idempotent: an object whose event exists "
        "records nothing new, so it is safe to run again. Exits 4 when objects "
        "failed, 1 when a model could not be backfilled."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since",
            required=True,
            metavar="DATE",
            help="Objects whose date_field is at or after this ISO date or date-time "
            "(2024-05-01, 2024-05-01T13:00, 2024-05-01T13:00+02:00); without an offset, "
            "in the current time zone.",
        )
        parser.add_argument(
            "--until",
            metavar="DATE",
            help="Only objects before this date or date-time (excluded; read as --since "
            "is). Default: no end.",
        )
        parser.add_argument(
            "--model",
            action="append",
            dest="models",
            metavar="APP_LABEL.MODELNAME",
            help="A registered model to backfill; repeat for several. Default: all.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Do everything in transactions that are rolled back: report what "
            "would be recorded, write nothing.",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=BATCH_SIZE,
            help=f"Objects per transaction (default {BATCH_SIZE}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        since = _moment("--since", options["since"])
        until = (
            None if options["until"] is None else _moment("--until", options["until"])
        )
        if until is not None and until <= since:
            raise CommandError(
                f"--until {options['until']} must be after --since {options['since']}."
            )
        batch_size: int = options["batch_size"]
        if batch_size < 1:
            raise CommandError(f"--batch-size must be at least 1, got {batch_size}.")
        models = [_model(label) for label in options["models"] or []] or None

        for warning in backfill_warnings(since=since, models=models):
            self.stderr.write(self.style.WARNING(f"Warning: {warning}"))
        report = backfill(
            since=since,
            until=until,
            models=models,
            dry_run=options["dry_run"],
            batch_size=batch_size,
        )
        self._write(report)
        if not report.ok:
            stopped = any(result.problem is not None for result in report.models)
            raise CommandError(
                _verdict(report),
                returncode=ExitCode.ERROR if stopped else ExitCode.FAILED,
            )

    def _write(self, report: BackfillReport) -> None:
        if not report.models:
            self.stdout.write(
                "Nothing to backfill: no model has a registered conversion."
            )
        elif report.dry_run:
            self.stdout.write("Dry run, nothing was written. What a run would do:")
        for result in report.models:
            if result.problem is not None:
                self.stderr.write(
                    self.style.ERROR(f"{result.label}: stopped: {result.problem}")
                )
            self.stdout.write(f"{result.label}: {result.summary()}")
            for error in result.errors:
                self.stderr.write(f"  {error}")
            if result.failed > len(result.errors):
                self.stderr.write(
                    f"  ... and {result.failed - len(result.errors)} more"
                )


def _moment(option: str, value: object) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise CommandError(
            f"{option} {value} is not an ISO date or date-time: give it as "
            + "2024-05-01, 2024-05-01T13:00 or 2024-05-01T13:00+02:00."
        ) from None
    # Naive means the wall clock of the current time zone, as the admin shows dates.
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


def _model(label: str) -> type[Model]:
    try:
        return registered_model(label)
    except LookupError as exc:
        raise CommandError(f"--model {label}: {exc.args[0]}.") from None


def _verdict(report: BackfillReport) -> str:
    stopped = [result.label for result in report.models if result.problem is not None]
    failed = sum(result.failed for result in report.models)
    problems = []
    if stopped:
        problems.append("could not backfill " + ", ".join(stopped))
    if failed:
        problems.append(f"{failed} object(s) failed")
    return "; ".join(problems) + " (details above)."
