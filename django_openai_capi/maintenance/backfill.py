"""Recording the events of objects saved before their conversion was tracked.

Each object goes the way a save goes, through ``record_save``: ``should_track`` decides,
the identity hooks name the event, and the insert is ``ON CONFLICT DO NOTHING``, so an
object whose event exists records nothing new and a second run is a no-op. An event whose
time is past the API's 7-day window is recorded expired, as a late save's would be: it
is in the outbox and the admin, and never sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.apps import apps
from django.db import DEFAULT_DB_ALIAS, router, transaction
from django.db.models import Max, Model, Q
from django.utils import timezone

from django_openai_capi.api.identifiers import SOURCE_LABEL_MAX_LENGTH, storable
from django_openai_capi.models import ACCEPTANCE_WINDOW, ConversionEvent
from django_openai_capi.redaction import describe_exception
from django_openai_capi.tracking.conversion import ModelConversion
from django_openai_capi.tracking.recording import record_save
from django_openai_capi.tracking.registry import registry

#: Objects per transaction, by default.
BATCH_SIZE = 500
#: Failures kept per model, with their reasons, for the report.
ERRORS_KEPT = 5
# Labels per read-back query: far below every database's limit on query parameters.
_READBACK_SLICE = 500

_Status = ConversionEvent.Status


@dataclass
class ModelBackfill:
    """What a backfill did (in a dry run: would do) for one registered model."""

    label: str
    recorded: int = 0
    already_there: int = 0
    expired: int = 0
    skipped: int = 0
    failed: int = 0
    #: The first failures (at most :data:`ERRORS_KEPT`), each naming its object.
    errors: list[str] = field(default_factory=list)
    #: Why the model's objects could not be walked (to the end), if so.
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None and not self.failed

    def summary(self) -> str:
        return (
            f"recorded {self.recorded}, already there {self.already_there}, "
            + f"expired {self.expired}, skipped (should_track False) {self.skipped}, "
            + f"failed {self.failed}"
        )

    def count_failure(self, error: str) -> None:
        """Count one failed object, keeping its reason if it is among the first."""
        self.failed += 1
        if len(self.errors) < ERRORS_KEPT:
            self.errors.append(error)


@dataclass
class BackfillReport:
    """What :func:`backfill` did, model by model."""

    since: datetime
    until: datetime | None
    dry_run: bool
    models: list[ModelBackfill] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every model was walked to the end and no object failed."""
        return all(result.ok for result in self.models)


def registered_model(label: str) -> type[Model]:
    """The model named ``"app_label.ModelName"``, if a conversion is registered for it.

    Raises :class:`LookupError` saying which of the two is missing.
    """
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError):
        raise LookupError(
            f"no model {label!r} is installed (give it as app_label.ModelName)"
        ) from None
    _conversion_of(model)
    return model


def backfill_warnings(
    *, since: datetime, models: Iterable[type[Model]] | None = None
) -> list[str]:
    """What to tell a person before a backfill of *models* since *since* starts."""
    warnings = []
    window_start = timezone.now() - ACCEPTANCE_WINDOW
    if since < window_start:
        warnings.append(
            f"since {_when(since)} is more than 7 days ago, and the API refuses events "
            + f"older than that: events whose time is before {_when(window_start)} "
            + "are recorded as expired and will never be delivered (counted as expired)."
        )
    for conversion in _conversions(models):
        if (
            type(conversion).get_event_time is ModelConversion.get_event_time
            and conversion.date_field is None
        ):
            warnings.append(
                f"{type(conversion).__name__} has no date_field and keeps the default "
                + "get_event_time(), the time of the save: its backfilled events will "
                + f"say the {conversion.model._meta.label} conversions happened now. "
                + "Set date_field, or override get_event_time() to return the "
                + "object's own date."
            )
    return warnings


def backfill(
    *,
    since: datetime,
    until: datetime | None = None,
    models: Iterable[type[Model]] | None = None,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    using: str = DEFAULT_DB_ALIAS,
) -> BackfillReport:
    """Record the missing events of the objects each conversion's
    ``get_backfill_queryset(since, until)`` selects (default: every registered model).

    Objects are read in primary-key order, *batch_size* per transaction. A model whose
    conversion cannot select its objects is reported in its result's ``problem`` and the
    others still run; an object whose hooks raise (with ``OPENAI_CAPI_RAISE_ERRORS``) is
    counted failed and the run goes on. A dry run does all of it in transactions that
    are rolled back, so its counts are exactly what a run would record.
    """
    if timezone.is_naive(since) or (until is not None and timezone.is_naive(until)):
        raise ValueError("since and until must be timezone-aware datetimes")
    if until is not None and until <= since:
        raise ValueError(f"until ({until}) must be after since ({since})")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    report = BackfillReport(since=since, until=until, dry_run=dry_run)
    for conversion in _conversions(models):
        result = ModelBackfill(conversion.model._meta.label)
        report.models.append(result)
        try:
            _walk(conversion, since, until, result, dry_run, batch_size, using)
        except Exception as exc:
            # A host's get_backfill_queryset() (no date_field, a misspelt field, a
            # query the database refuses) stops its own model, not the others.
            result.problem = describe_exception(exc)
    return report


def _walk(
    conversion: ModelConversion[Any],
    since: datetime,
    until: datetime | None,
    result: ModelBackfill,
    dry_run: bool,
    batch_size: int,
    using: str,
) -> None:
    objects = conversion.get_backfill_queryset(since, until).using(using).order_by("pk")
    # Pages by primary key, each read inside its own transaction, rather than one
    # .iterator(): a server-side cursor that outlives the per-page commits has to be
    # declared WITH HOLD, which makes PostgreSQL copy the whole result up front, and
    # it cannot run behind a transaction-pooling PgBouncer at all.
    page = objects
    while True:
        with transaction.atomic(using=using):
            chunk = list(page[:batch_size])
            written = _record_chunk(conversion, chunk, result, using)
            if dry_run:
                # Read before the rollback: afterwards there is nothing to read.
                _count(written, result, using)
                transaction.set_rollback(True, using=using)
        if not dry_run:
            # Read after the commit: with OPENAI_CAPI_DISPATCH "inline" (or "task" run
            # at once) the commit has just built and sent the events, and one whose
            # build failed, its traceback logged, is failed now, not pending.
            _count(written, result, using)
        if len(chunk) < batch_size:
            return
        page = objects.filter(pk__gt=chunk[-1].pk)


@dataclass(frozen=True, slots=True)
class _Written:
    """The source labels of the rows a chunk wrote: new rows, with ids above *floor*,
    and failed rows replaced in place, which keep their id and were updated at or
    after *started*."""

    labels: list[str]
    floor: int
    started: datetime
    #: Whether the rows are in the database written to (not, where a router keeps
    #: the outbox elsewhere: they are written after the commit, and not read back).
    here: bool


def _record_chunk(
    conversion: ModelConversion[Any],
    chunk: Sequence[Model],
    result: ModelBackfill,
    using: str,
) -> _Written:
    if not chunk:
        return _Written([], 0, timezone.now(), here=False)
    # Where a router keeps the outbox out of *using*, record_save writes the rows
    # there after the commit, and there is nothing to read back yet.
    outbox_here = router.allow_migrate_model(using, ConversionEvent)
    # Rows this chunk writes get ids above the highest one now: the read-back below
    # walks only them, on the primary key, however large the outbox is.
    floor: int = (
        ConversionEvent.objects.using(using).aggregate(top=Max("id"))["top"] or 0
        if outbox_here
        else 0
    )
    started = timezone.now()
    written: list[str] = []
    for obj in chunk:
        # As record_save stores it, so that the read-back below finds the row.
        label = storable(
            f"{conversion.model._meta.label}:{obj.pk}", SOURCE_LABEL_MAX_LENGTH
        )
        try:
            # One savepoint per object: a hook whose query fails must not abort the
            # transaction the rest of the chunk is written in.
            with transaction.atomic(using=using):
                if not _tracks(conversion, obj):
                    result.skipped += 1
                    continue
                if record_save(conversion, obj, created=True, using=using):
                    written.append(label)
                else:
                    result.already_there += 1
        except Exception as exc:
            result.count_failure(f"{label}: {describe_exception(exc)}")
    return _Written(written, floor, started, outbox_here)


def _count(written: _Written, result: ModelBackfill, using: str) -> None:
    """Count the rows a chunk wrote by their status as it is now."""
    outcomes = _read_back(written, using) if written.here else {}
    for label in written.labels:
        status, error = outcomes.get(label, (_Status.PENDING, ""))
        if status == _Status.FAILED:
            result.count_failure(error)
        elif status == _Status.EXPIRED:
            result.expired += 1
        else:
            result.recorded += 1


def _tracks(conversion: ModelConversion[Any], obj: Model) -> bool:
    # Asked here as well as in record_save, whose False cannot tell "not a
    # conversion" from "recorded before".
    try:
        return conversion.should_track(obj, True)
    except Exception:
        # record_save asks again, and records (or raises) the error as a save would.
        return True


def _read_back(written: _Written, using: str) -> dict[str, tuple[str, str]]:
    """The status and error of the rows just written for *written*'s labels.

    A label absent from the answer was written elsewhere (the outbox's own database,
    after the commit), pending.
    """
    labels = written.labels
    # A failed row replaced in place keeps its old id: found by its update instead.
    # Ordered by id, so that a new row wins over an older row of the same object
    # that something else updated meanwhile.
    just_written = Q(id__gt=written.floor) | Q(updated_at__gte=written.started)
    outcomes: dict[str, tuple[str, str]] = {}
    for start in range(0, len(labels), _READBACK_SLICE):
        rows = (
            ConversionEvent.objects.using(using)
            .filter(
                just_written, source_label__in=labels[start : start + _READBACK_SLICE]
            )
            .order_by("id")
        )
        for label, status, error in rows.values_list(
            "source_label", "status", "last_error"
        ):
            outcomes[label] = (status, error)
    return outcomes


def _conversions(
    models: Iterable[type[Model]] | None,
) -> list[ModelConversion[Any]]:
    if models is None:
        chosen = list(registry)
    else:
        # A multi-table child resolves to its parent's conversion: walk it once.
        chosen = list({id(c): c for c in map(_conversion_of, models)}.values())
    return sorted(chosen, key=lambda conversion: conversion.model._meta.label)


def _conversion_of(model: type[Model]) -> ModelConversion[Any]:
    conversion = registry.get(model)
    if conversion is None:
        registered = sorted(c.model._meta.label for c in registry)
        raise LookupError(
            f"{model._meta.label} has no registered conversion (registered: "
            + (", ".join(registered) or "none")
            + ")"
        )
    return conversion


def _when(moment: datetime) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M %Z}"
