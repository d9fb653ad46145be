"""The build step: turning recorded model conversions into the exact JSON to send.

A model conversion is recorded inside the host's transaction with no payload; its
payload is built here, afterwards, from the committed rows (an order's lines are often
saved after the order, in the same transaction). The worker runs this step before every
claim, so a crash between the commit and the build loses nothing, and a row is claimed
for sending only once it has a payload.

Objects are loaded per model in one query (through the conversion's ``get_queryset``).
A chunk's events are marked built with one ``UPDATE ... RETURNING`` and their payloads
stored in their own table with one ``INSERT``; each other outcome is one ``UPDATE`` per
kind. Every write is guarded so that a slower concurrent builder cannot overwrite what
another one already wrote.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from django.core.exceptions import ValidationError
from django.db import connections, models, transaction
from django.db.models import Case, QuerySet, TextField, Value, When
from django.db.models.sql import UpdateQuery
from django.utils import timezone

from django_openai_capi import alerts
from django_openai_capi.api.events import encode_event
from django_openai_capi.api.validation import now_ms
from django_openai_capi.conf import conf
from django_openai_capi.db import locked, updates_return_rows
from django_openai_capi.exceptions import ConversionError, EventValidationError
from django_openai_capi.models import ConversionEvent, ErrorKind, EventPayload
from django_openai_capi.redaction import describe_exception, format_traceback, redact
from django_openai_capi.signals import EventInfo, event_expired, event_failed, send
from django_openai_capi.tracking.context import RequestContext
from django_openai_capi.tracking.conversion import HookError, ModelConversion
from django_openai_capi.tracking.registry import registry

logger = logging.getLogger("django_openai_capi.tracking")

_Status = ConversionEvent.Status
#: Rows read per round; also what ``build_pending`` takes by default.
BUILD_CHUNK = 1000


@dataclass
class BuildReport:
    """What one build pass did, by outcome."""

    built: int = 0
    failed: int = 0
    cancelled: int = 0
    expired: int = 0
    #: The first error, kept for OPENAI_CAPI_RAISE_ERRORS.
    first_error: ConversionError | None = field(default=None, repr=False)

    @property
    def total(self) -> int:
        return self.built + self.not_built

    @property
    def not_built(self) -> int:
        return self.failed + self.cancelled + self.expired

    def merge(self, other: BuildReport) -> None:
        """Add what *other*, a later pass, did."""
        self.built += other.built
        self.failed += other.failed
        self.cancelled += other.cancelled
        self.expired += other.expired
        self.first_error = self.first_error or other.first_error


@dataclass
class _Outcome:
    status: str
    kind: str
    error: str


def build_pending(*, limit: int = BUILD_CHUNK, using: str = "default") -> BuildReport:
    """Build the payloads of up to *limit* recorded, unbuilt events, oldest first.

    Each event ends built (still pending, now sendable), failed (a hook raised, or the
    hooks made an invalid event), cancelled (its object was deleted before it could be
    built) or expired (too old for the API). Failures are logged; with
    ``OPENAI_CAPI_RAISE_ERRORS`` the first one is raised as :class:`ConversionError`
    after every outcome is stored.
    """
    report = BuildReport()
    remaining = limit
    while remaining > 0:
        rows = list(
            ConversionEvent.objects.using(using)
            .unbuilt()
            .order_by("id")
            .only(
                "id",
                "pixel_id",
                "event_type",
                "event_id",
                "event_time",
                "expires_at",
                "source_label",
                "context",
            )[: min(remaining, BUILD_CHUNK)]
        )
        if not rows:
            break
        _build_rows(rows, using, report)
        remaining -= len(rows)
    if report.first_error is not None and conf.OPENAI_CAPI_RAISE_ERRORS:
        raise report.first_error
    return report


def _build_rows(
    rows: Sequence[ConversionEvent], using: str, report: BuildReport
) -> None:
    now = timezone.now()
    clock = now_ms()
    payloads: dict[int, str] = {}
    outcomes: dict[int, _Outcome] = {}
    for label, group in _by_model(rows).items():
        conversion = registry.get_by_label(label)
        try:
            with _isolated(using):
                loaded = _load(conversion, label, group, using)
        except Exception as exc:
            # A get_queryset() that cannot run fails its own model's events, not the
            # pass: the rows of every other model are still built.
            name = type(conversion).__name__
            message = f"{name}.get_queryset() could not load {label}: {describe_exception(exc)}"
            _note_failure(message, exc, group[0][0].source_label, report)
            loaded = [
                (row, None, _Outcome(_Status.FAILED, ErrorKind.BUILD, message))
                for row, _ in group
            ]
        for row, obj, problem in loaded:
            if row.expires_at <= now:
                outcomes[row.pk] = _Outcome(
                    _Status.EXPIRED,
                    ErrorKind.EXPIRED,
                    f"Not built before its 7-day window closed (event time {row.event_time:%Y-%m-%d %H:%M} UTC).",
                )
            elif problem is not None:
                outcomes[row.pk] = problem
            else:
                assert conversion is not None and obj is not None
                payload, outcome = _build_one(
                    conversion, obj, row, clock, report, using
                )
                if payload is not None:
                    payloads[row.pk] = payload
                if outcome is not None:
                    outcomes[row.pk] = outcome
    report.built += _store_payloads(payloads, using, now)
    _store_outcomes(outcomes, using, now, report)
    _signal_outcomes(rows, outcomes, using)


def _by_model(
    rows: Iterable[ConversionEvent],
) -> dict[str, list[tuple[ConversionEvent, str]]]:
    groups: dict[str, list[tuple[ConversionEvent, str]]] = defaultdict(list)
    for row in rows:
        model_label, _, pk = row.source_label.partition(":")
        groups[model_label].append((row, pk))
    return groups


def _load(
    conversion: ModelConversion[Any] | None,
    label: str,
    group: list[tuple[ConversionEvent, str]],
    using: str,
) -> Iterable[tuple[ConversionEvent, models.Model | None, _Outcome | None]]:
    """Each row with its object, or the reason it has none."""
    if conversion is None:
        unregistered = _Outcome(
            _Status.FAILED,
            ErrorKind.BUILD,
            f"No conversion is registered for {label or 'this event'}: it was recorded "
            + "by a registration that is gone. Register it again and resend, or cancel.",
        )
        return [(row, None, unregistered) for row, _ in group]
    pk_field = conversion.model._meta.pk
    assert pk_field is not None
    keys: dict[int, Any] = {}
    for row, text in group:
        try:
            keys[row.pk] = pk_field.to_python(text)
        except ValidationError:
            keys[row.pk] = None
    wanted = [key for key in keys.values() if key is not None]
    found = conversion.get_queryset().using(using).in_bulk(wanted)
    missing = [key for key in wanted if key not in found]
    # Deleted, or merely outside get_queryset()? Only asked about the (rare) misses.
    existing = (
        set(
            conversion.model._base_manager.using(using)
            .filter(pk__in=missing)
            .values_list("pk", flat=True)
        )
        if missing
        else set()
    )
    result = []
    for row, _ in group:
        key = keys[row.pk]
        obj = found.get(key) if key is not None else None
        problem = None
        if key is None:
            problem = _Outcome(
                _Status.FAILED,
                ErrorKind.BUILD,
                f"{row.source_label!r} does not name a {label} by its primary key.",
            )
        elif obj is None and key in existing:
            problem = _Outcome(
                _Status.FAILED,
                ErrorKind.BUILD,
                f"{row.source_label} exists but {type(conversion).__name__}.get_queryset() "
                + "excludes it, so its event cannot be built.",
            )
        elif obj is None:
            problem = _Outcome(
                _Status.CANCELLED,
                ErrorKind.SOURCE_MISSING,
                f"{row.source_label} was deleted before its event was built.",
            )
        result.append((row, obj, problem))
    return result


def _build_one(
    conversion: ModelConversion[Any],
    obj: models.Model,
    row: ConversionEvent,
    clock: int,
    report: BuildReport,
    using: str,
) -> tuple[str | None, _Outcome | None]:
    name = type(conversion).__name__
    try:
        # Caught outside the savepoint, so that a failure rolls it back.
        with _isolated(using):
            event = conversion.build(
                obj,
                event_id=row.event_id,
                event_time=row.event_time,
                now=clock,
                context=RequestContext.from_json(row.context),
            )
            return encode_event(event), None
    except EventValidationError as exc:
        message = (
            f"{name} made an invalid event for {row.source_label}: {redact(str(exc))}"
        )
        kind = ErrorKind.INVALID
        cause: Exception = exc
    except HookError as exc:
        message = f"{name}.{exc.hook}({row.source_label}) raised {describe_exception(exc.error)}"
        kind = ErrorKind.BUILD
        cause = exc.error
    except Exception as exc:  # what the hooks returned broke the event's encoding
        message = f"{name} could not build the event of {row.source_label}: {describe_exception(exc)}"
        kind = ErrorKind.BUILD
        cause = exc
    _note_failure(message, cause, row.source_label, report)
    return None, _Outcome(_Status.FAILED, kind, message)


def _note_failure(
    message: str, cause: Exception, label: str, report: BuildReport
) -> None:
    logger.error("%s\n%s", message, format_traceback(cause))
    if report.first_error is None:
        error = ConversionError(message, source_label=label)
        error.__cause__ = cause
        report.first_error = error


def _isolated(using: str) -> AbstractContextManager[object]:
    """A savepoint around host code when the pass runs inside a transaction.

    Outside one (the worker's case) every query commits on its own, and a hook's
    database error cannot leave anything aborted behind it.
    """
    if connections[using].in_atomic_block:
        return transaction.atomic(using=using)
    return nullcontext()


def _store_payloads(payloads: dict[int, str], using: str, now: datetime) -> int:
    """Mark the events built and store their payloads: two statements per chunk.

    Only rows still pending and unbuilt are marked, and only those get their payload:
    a concurrent builder that got there first, or a person who cancelled the event
    meanwhile, keeps what they wrote. Both writes of a chunk commit together, so a
    built event always has its payload.
    """
    ids = list(payloads)
    # The INSERT takes two parameters a row, the UPDATE one and its shared values.
    limit = connections[using].features.max_query_params
    size = max(1, len(ids) if limit is None else (limit - 10) // 2)
    built = 0
    for start in range(0, len(ids), size):
        chunk = ids[start : start + size]
        with transaction.atomic(using=using):
            marked = _mark_built(
                ConversionEvent.objects.using(using).unbuilt().filter(pk__in=chunk),
                now,
            )
            EventPayload.objects.using(using).bulk_create(
                # Value(): one parameter a payload. Plain values would go through
                # Django's UNNEST of one array a column on PostgreSQL, whose text
                # psycopg escapes in Python: 230 ms a chunk instead of 80.
                [EventPayload(event_id=pk, json=Value(payloads[pk])) for pk in marked],
                # A payload left over from an earlier build (of an event whose marker
                # was cleared by hand) gives way to this one.
                update_conflicts=True,
                unique_fields=["event"],
                update_fields=["json"],
            )
        built += len(marked)
    return built


def _mark_built(events: QuerySet[ConversionEvent], now: datetime) -> list[int]:
    """Mark *events* built; the ids of those it marked, in one statement if it can.

    The context is cleared with the marking: what the event needed of it is in the
    payload now, and the IP and user agent are not kept a day longer than that.
    """
    values = {"built_at": now, "context": None, "updated_at": now}
    connection = connections[events.db]
    if not updates_return_rows(connection):
        # Locked where the database can, and written under the same filter again.
        ids = list(locked(events, connection).values_list("pk", flat=True))
        events.filter(pk__in=ids).update(**values)
        return ids
    query = cast(UpdateQuery, events.query.chain(UpdateQuery))
    query.add_update_values(values)
    sql, params = query.get_compiler(connection=connection).as_sql()
    pk = ConversionEvent._meta.pk.column
    assert pk is not None
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} RETURNING {connection.ops.quote_name(pk)}", params)
        return [row[0] for row in cursor.fetchall()]


def _store_outcomes(
    outcomes: dict[int, _Outcome], using: str, now: datetime, report: BuildReport
) -> None:
    # One UPDATE per outcome, not per row: a bug in one hook fails every event alike.
    groups: dict[tuple[str, str], dict[int, str]] = defaultdict(dict)
    for pk, outcome in outcomes.items():
        groups[(outcome.status, outcome.kind)][pk] = outcome.error
    for (status, kind), errors in groups.items():
        updated = _update_unbuilt(
            using,
            errors,
            status=status,
            last_error_kind=kind,
            context=None,
            updated_at=now,
        )
        setattr(
            report,
            _REPORT_FIELD[status],
            getattr(report, _REPORT_FIELD[status]) + updated,
        )
        if (
            status != _Status.FAILED
        ):  # failures were logged, with their traceback, when built
            for error in errors.values():
                logger.warning("%s", error)


def _signal_outcomes(
    rows: Sequence[ConversionEvent], outcomes: dict[int, _Outcome], using: str
) -> None:
    """``event_failed`` / ``event_expired`` for events that will never be sent."""
    alerts.events_failed(
        [
            (row.pixel_id, outcome.kind, outcome.error)
            for row in rows
            if (outcome := outcomes.get(row.pk)) is not None
            and outcome.status != _Status.CANCELLED
        ],
        using=using,
    )
    for row in rows:
        outcome = outcomes.get(row.pk)
        if outcome is None or outcome.status == _Status.CANCELLED:
            continue
        signal = event_failed if outcome.status == _Status.FAILED else event_expired
        if signal.has_listeners(ConversionEvent):
            send(
                signal,
                ConversionEvent,
                event=EventInfo(
                    pk=row.pk,
                    pixel_id=row.pixel_id,
                    event_type=row.event_type,
                    event_id=row.event_id,
                    source_label=row.source_label,
                    kind=outcome.kind,
                    error=outcome.error,
                ),
            )


_REPORT_FIELD: dict[str, str] = {
    _Status.FAILED: "failed",
    _Status.CANCELLED: "cancelled",
    _Status.EXPIRED: "expired",
}


def _update_unbuilt(using: str, errors: dict[int, str], **common: object) -> int:
    """Set ``last_error`` to each row's own text, and *common* on all of them.

    Only rows still pending and unbuilt are written: a concurrent builder that got
    there first, or a worker that claimed the row meanwhile, keeps what it wrote.
    """
    ids = list(errors)
    # Two parameters per row in the CASE and one in the IN list, plus the shared ones.
    limit = connections[using].features.max_query_params
    size = len(ids) if limit is None else max(1, (limit - len(common) - 3) // 3)
    updated = 0
    for start in range(0, len(ids), size):
        chunk = ids[start : start + size]
        error = Case(
            *(When(pk=pk, then=Value(errors[pk])) for pk in chunk),
            output_field=TextField(),
        )
        updated += (
            ConversionEvent.objects.using(using)
            .unbuilt()
            .filter(pk__in=chunk)
            .update(last_error=error, **common)
        )
    return updated
