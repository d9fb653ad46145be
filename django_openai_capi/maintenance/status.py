"""How delivery is doing, in a fixed number of bounded queries.

What the admin's status page shows, usable from code too (a health check, a metrics
exporter). Nothing here counts a whole table: each count stops at ``COUNT_CAP`` rows
and walks an index whose predicate is its status; the hourly figures read only the
``DeliveryBatch`` rows of the last days (indexed by ``created_at``); the last error of
each kind is the newer of one event row, from the ``(last_error_kind, id)`` index, and
one failed request, from the ``(outcome, created_at)`` index of failed requests.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from django_openai_capi.delivery.answers import OUTCOME_KIND
from django_openai_capi.models import ConversionEvent, DeliveryBatch, ErrorKind

_Status = ConversionEvent.Status
_Outcome = DeliveryBatch.Outcome

#: A failed request: what the chart of failed requests counts, and what the last errors
#: of each kind are drawn from beside the events' own errors. One definition, so that
#: the page cannot chart failures that its list of errors does not show: an event's
#: error is cleared when a later request sends it, the request's failure stays.
FAILED_REQUEST = ~Q(outcome=_Outcome.ACCEPTED)
_FAILED_OUTCOMES = tuple(
    outcome for outcome in _Outcome if outcome != _Outcome.ACCEPTED
)

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
    #: Events that became failed or expired this hour.
    failed: int
    #: Requests this hour by ``DeliveryBatch.Outcome`` value: every outcome, in order.
    requests: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class LastError:
    """The newest error of one kind: an event's, or a failed request's."""

    kind: str
    label: str
    #: The event it is recorded on; None for a failed request.
    event_pk: int | None
    event_id: str
    #: The event's status, or the failed request's outcome.
    status: str
    error: str
    http_status: int | None
    #: When it was recorded.
    updated_at: datetime
    #: The failed request (its ``DeliveryBatch``); None for an event's error.
    request_pk: uuid.UUID | None = None
    request_id: str = ""


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
        last_errors=_last_errors(events, using),
    )


def _count(events: QuerySet[ConversionEvent], status: str, label: str) -> StatusCount:
    found = events.filter(status=status).order_by()[: COUNT_CAP + 1].count()
    return StatusCount(status, str(label), min(found, COUNT_CAP), found > COUNT_CAP)


def _hours(now: datetime, days: int, using: str) -> tuple[Hour, ...]:
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(days=days)
    sent = Q(outcome=_Outcome.ACCEPTED, validate_only=False)
    requests = (
        DeliveryBatch.objects.using(using)
        .filter(created_at__gte=start, created_at__lt=end)
        .annotate(hour=TruncHour("created_at", tzinfo=UTC))
        .values("hour", "outcome")
        .annotate(delivered=Sum("size", filter=sent, default=0), count=Count("id"))
        .order_by()
    )
    delivered: dict[datetime, int] = {}
    by_outcome: dict[tuple[datetime, str], int] = {}
    for row in requests:
        hour = row["hour"]
        delivered[hour] = delivered.get(hour, 0) + row["delivered"]
        by_outcome[hour, row["outcome"]] = row["count"]
    # When an event became failed or expired is its updated_at, as health.py counts
    # them: a resend, the one later write, makes it pending again.
    failed = dict(
        ConversionEvent.objects.using(using)
        .filter(
            status__in=[_Status.FAILED, _Status.EXPIRED],
            updated_at__gte=start,
            updated_at__lt=end,
        )
        .annotate(hour=TruncHour("updated_at", tzinfo=UTC))
        .values("hour")
        .annotate(count=Count("id"))
        .order_by()
        .values_list("hour", "count")
    )
    hours = []
    for index in range(days * 24):
        hour = start + timedelta(hours=index)
        hours.append(
            Hour(
                hour,
                delivered.get(hour, 0),
                failed.get(hour, 0),
                {
                    outcome: by_outcome.get((hour, outcome), 0)
                    for outcome in _Outcome.values
                },
            )
        )
    return tuple(hours)


def _last_errors(
    events: QuerySet[ConversionEvent], using: str
) -> tuple[LastError, ...]:
    """The newest error of each kind, in the order of ``ErrorKind``."""
    newest: dict[str, LastError] = {}
    found = [_last_event_error(events, kind) for kind in ErrorKind.values]
    found += [_last_failed_request(outcome, using) for outcome in _FAILED_OUTCOMES]
    for error in found:
        if error is not None and (
            error.kind not in newest or error.updated_at > newest[error.kind].updated_at
        ):
            newest[error.kind] = error
    return tuple(newest[kind] for kind in ErrorKind.values if kind in newest)


def _last_event_error(events: QuerySet[ConversionEvent], kind: str) -> LastError | None:
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
    return LastError(kind, str(ErrorKind(kind).label), *row)


def _last_failed_request(outcome: str, using: str) -> LastError | None:
    # One outcome at a time, so that each is one probe of the failed-request index.
    row = (
        DeliveryBatch.objects.using(using)
        .filter(FAILED_REQUEST, outcome=outcome)
        .order_by("-created_at")
        .values_list("pk", "http_status", "error", "request_id", "created_at")
        .first()
    )
    if row is None:
        return None
    pk, http_status, error, request_id, created_at = row
    # Filed as delivery filed it when it recorded the request, not re-derived from
    # its status: a 400 is a refused event or, once delivery has found so, a refused
    # request.
    kind = OUTCOME_KIND[outcome]
    return LastError(
        kind=kind,
        label=str(kind.label),
        event_pk=None,
        event_id="",
        status=str(_Outcome(outcome).label),
        error=error,
        http_status=http_status,
        updated_at=created_at,
        request_pk=pk,
        request_id=request_id,
    )
