"""How delivery is doing, in a fixed number of bounded queries.

What the admin's status page shows, usable from code too (a health check, a metrics
exporter). Nothing here counts a whole table: each count stops at ``COUNT_CAP`` rows
and walks an index whose predicate is its status; the hourly figures read only the
``DeliveryBatch`` rows of the last days (indexed by ``created_at``); the last error of
each kind is one row from the ``(last_error_kind, id)`` index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from django_openai_capi.models import ConversionEvent, DeliveryBatch, ErrorKind

_Status = ConversionEvent.Status

#: A count stops here: "more than 100,000 failed" is as actionable as the exact figure,
#: and reading past it would be the full scan this page must not make.
COUNT_CAP = 100_000
#: Days of hourly delivery figures.
DAYS = 3


@dataclass(frozen=True, slots=True)
class StatusCount:
    status: str
    label: str
    count: int
    #: The count stopped at COUNT_CAP: there are more.
    capped: bool


@dataclass(frozen=True, slots=True)
class Hour:
    start: datetime
    #: Events the API accepted (validate-only requests excluded: it recorded nothing).
    delivered: int
    #: Requests that did not end accepted.
    failed_requests: int


@dataclass(frozen=True, slots=True)
class LastError:
    kind: str
    label: str
    event_pk: int
    event_id: str
    status: str
    error: str
    http_status: int | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class DeliveryStatus:
    now: datetime
    counts: tuple[StatusCount, ...]
    #: The event time of the oldest pending event, None when nothing is pending.
    oldest_pending: datetime | None
    hours: tuple[Hour, ...]
    last_errors: tuple[LastError, ...]


def delivery_status(*, days: int = DAYS, using: str = "default") -> DeliveryStatus:
    """Counts per status, the oldest pending event, hourly figures, the last errors."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    now = timezone.now()
    events = ConversionEvent.objects.using(using)
    return DeliveryStatus(
        now=now,
        counts=tuple(
            _count(events, status, str(label)) for status, label in _Status.choices
        ),
        # Ordered by the pending-only index on expires_at (= event_time + 7 days).
        oldest_pending=events.filter(status=_Status.PENDING)
        .order_by("expires_at")
        .values_list("event_time", flat=True)
        .first(),
        hours=_hours(now, days, using),
        last_errors=tuple(
            error
            for kind, label in ErrorKind.choices
            if (error := _last_error(events, kind, str(label))) is not None
        ),
    )


def _count(events: QuerySet[ConversionEvent], status: str, label: str) -> StatusCount:
    found = events.filter(status=status).order_by()[: COUNT_CAP + 1].count()
    return StatusCount(status, str(label), min(found, COUNT_CAP), found > COUNT_CAP)


def _hours(now: datetime, days: int, using: str) -> tuple[Hour, ...]:
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(days=days)
    accepted = Q(outcome=DeliveryBatch.Outcome.ACCEPTED)
    rows = (
        DeliveryBatch.objects.using(using)
        .filter(created_at__gte=start, created_at__lt=end)
        .annotate(hour=TruncHour("created_at", tzinfo=UTC))
        .values("hour")
        .annotate(
            delivered=Sum("size", filter=accepted & Q(validate_only=False), default=0),
            failed=Count("id", filter=~accepted),
        )
        .order_by("hour")
    )
    by_hour = {row["hour"]: (row["delivered"], row["failed"]) for row in rows}
    hours = []
    for index in range(days * 24):
        hour = start + timedelta(hours=index)
        delivered, failed = by_hour.get(hour, (0, 0))
        hours.append(Hour(hour, delivered, failed))
    return tuple(hours)


def _last_error(
    events: QuerySet[ConversionEvent], kind: str, label: str
) -> LastError | None:
    row = (
        events.filter(last_error_kind=kind)
        .order_by("-id")
        .values_list(
            "pk", "event_id", "status", "last_error", "last_http_status", "updated_at"
        )
        .first()
    )
    if row is None:
        return None
    return LastError(kind, label, *row)
