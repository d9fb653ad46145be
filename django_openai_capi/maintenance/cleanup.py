"""Deleting old finished outbox rows, a batch at a time.

Only rows nothing will touch again go: events that were sent, expired or cancelled
(failed ones only when asked: they are what a person still has to look at), and the
per-request ``DeliveryBatch`` records. Pending and sending events are never deleted,
whatever their age. Each batch is its own short transaction, so a cleanup of millions
of rows neither holds locks for long nor keeps a huge transaction open.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.db import router, transaction
from django.db.models import Exists, Model, OuterRef, QuerySet
from django.utils import timezone

from django_openai_capi.conf import conf
from django_openai_capi.models import ConversionEvent, DeliveryBatch, EventPayload

#: Rows per delete, by default.
BATCH_SIZE = 1000

M = TypeVar("M", bound=Model)

_Status = ConversionEvent.Status
#: Statuses no delivery step moves an event out of.
FINISHED = (_Status.SENT, _Status.EXPIRED, _Status.CANCELLED)


@dataclass
class CleanupReport:
    """What :func:`cleanup` deleted (in a dry run: would delete)."""

    cutoff: datetime
    statuses: tuple[str, ...]
    dry_run: bool
    events: int = 0
    batches: int = 0


def cleanup(
    *,
    days: int | None = None,
    include_failed: bool = False,
    batch_size: int = BATCH_SIZE,
    dry_run: bool = False,
    using: str | None = None,
) -> CleanupReport:
    """Delete finished events, and delivery batches, created more than *days* ago.

    *days* defaults to ``OPENAI_CAPI_RETENTION_DAYS``; *using* to the database the
    routers give ``ConversionEvent``. A dry run only counts.
    """
    # As configured, unchecked: a wrong setting must stop the cleanup, not widen it.
    retention: object = conf.OPENAI_CAPI_RETENTION_DAYS if days is None else days
    if isinstance(retention, bool) or not isinstance(retention, int) or retention < 1:
        raise ValueError(
            f"days must be a whole number of at least 1, got {retention!r}"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    database = using or router.db_for_write(ConversionEvent)
    statuses = (*FINISHED, _Status.FAILED) if include_failed else FINISHED
    report = CleanupReport(
        cutoff=timezone.now() - timedelta(days=retention),
        statuses=tuple(statuses),
        dry_run=dry_run,
    )
    # By created_at, not updated_at: it is indexed for exactly this and grows with the
    # id, so each batch is a run of neighbouring rows; updated_at has no index and
    # moves with any edit in the admin. The age only sets the retention: what keeps
    # the rows still in play is the status, and an event's delivery is over within
    # the API's 7-day window after it was recorded anyway.
    events = ConversionEvent.objects.using(database).filter(
        status__in=statuses, created_at__lt=report.cutoff
    )
    # Whatever the outcome: a request's row is written once it has its answer, so none
    # is ever in flight, and none is read again by delivery.
    batches = DeliveryBatch.objects.using(database).filter(created_at__lt=report.cutoff)
    if dry_run:
        report.events = events.count()
        report.batches = batches.count()
    else:
        report.events = _delete_in_batches(events, batch_size)
        report.batches = _delete_in_batches(batches, batch_size)
    return report


def _delete_in_batches(rows: QuerySet[M], batch_size: int) -> int:
    """Delete *rows*, *batch_size* at a time in primary-key order; return how many."""
    deleted = 0
    while True:
        with transaction.atomic(using=rows.db):
            ids = list(rows.order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not ids:
                return deleted
            # A range over the batch, not an IN list of its ids: the same rows, in two
            # query parameters whatever the batch size. The filter of *rows* is applied
            # again, so a row resent from the admin in between stays.
            first, last = ids[0], ids[-1]
            deleted += _delete(rows.filter(pk__gte=first, pk__lte=last), first, last)


def _delete(rows: QuerySet[M], first: Any, last: Any) -> int:
    """Delete *rows*, between *first* and *last*, and their events' payloads.

    One statement for the rows, one for the payloads, whatever the batch size.
    """
    if rows.model is not ConversionEvent:
        count, _ = rows.delete()
        return count
    # Not QuerySet.delete(): to find the payloads, Django's collector would read every
    # event and delete them in pieces of 100. Events first, then the payloads in the
    # range left without one: a payload of an event resent in between stays with it.
    # (The foreign key is checked at the commit.)
    count = rows._raw_delete(rows.db)
    EventPayload.objects.using(rows.db).filter(pk__gte=first, pk__lte=last).exclude(
        Exists(ConversionEvent.objects.filter(pk=OuterRef("pk")))
    )._raw_delete(rows.db)
    return count
