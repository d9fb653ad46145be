"""How delivery is doing, in a fixed number of bounded queries.

What the admin's status page shows, usable from code too (a health check, a metrics
exporter). Nothing here counts a whole table, and every query walks an index that
serves it (BENCHMARKS.md, "Admin"):

- each count stops at ``COUNT_CAP`` rows of an index whose predicate is its status;
- the hourly requests read only the ``DeliveryBatch`` rows of the last days (indexed
  by ``created_at``); the hourly failed events read at most ``COUNT_CAP`` entries of
  the partial index of failed and expired events by ``updated_at``;
- the last error of each kind is the newer of one event row, from the
  ``(last_error_kind, id)`` index, and one failed request, from the
  ``(outcome, created_at)`` index of failed requests.

SQLite uses a partial index only for a query that repeats the index's own condition
(it does not prove that ``status = 'sent'`` implies ``status IN (...)``), and an ``IN``
list only if its values are written in the SQL, not bound: otherwise it scans the
table, 0.1 s a query at 1,000,000 rows. So each query on events here adds the
condition of the index it is meant to walk, as its CREATE INDEX wrote it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from django.db import connections
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Substr, TruncHour
from django.utils import timezone

from django_openai_capi.db import within_index
from django_openai_capi.delivery.answers import OUTCOME_KIND
from django_openai_capi.models import ConversionEvent, DeliveryBatch, ErrorKind

_Status = ConversionEvent.Status
_Outcome = DeliveryBatch.Outcome

#: A failed request: what the chart of requests counts as failed, and what the last
#: errors of each kind are drawn from beside the events' own errors. One definition,
#: so that the page cannot chart failures that its list of errors does not show: an
#: event's error is cleared when a later request sends it, the request's failure
#: stays. Also the condition of the index ``openai_capi_batch_failed``.
FAILED_REQUEST = ~Q(outcome=_Outcome.ACCEPTED)
_FAILED_OUTCOMES = tuple(
    outcome for outcome in _Outcome if outcome != _Outcome.ACCEPTED
)
#: The partial indexes the counts walk, by status; the finished statuses share one.
_COUNTED_BY: dict[str, str] = {
    _Status.PENDING: "openai_capi_event_overdue",
    _Status.SENDING: "openai_capi_event_claimed",
}
_FINISHED = "openai_capi_event_finished"
#: Events that will not be sent, failed or expired: what the chart counts as failed.
_GAVE_UP = "openai_capi_event_gave_up"
_HAS_ERROR = "openai_capi_event_error"

#: A count stops here: "more than 100,000 failed" is as actionable as the exact figure,
#: and reading past it would be the full scan this page must not make. The hourly
#: count of failed events reads at most this many rows too, the newest first.
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
    #: Events the API accepted this hour (validate-only requests excluded).
    delivered: int
    #: Events that became failed or expired this hour (they will not be sent).
    failed: int
    #: Requests made this hour, by DeliveryBatch.Outcome value (0s included for
    #: every outcome, in Outcome order), validate-only requests included.
    requests: Mapping[str, int]

    @property
    def failed_requests(self) -> int:
        """Requests that did not end accepted."""
        return sum(
            count
            for outcome, count in self.requests.items()
            if outcome != _Outcome.ACCEPTED
        )


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
    #: More than COUNT_CAP events failed in the hours shown: ``Hour.failed`` counts
    #: the newest COUNT_CAP of them, those updated after this time. None: all counted.
    failed_counted_after: datetime | None = None


def delivery_status(*, days: int = DAYS, using: str = "default") -> DeliveryStatus:
    """Counts per status, the oldest pending event, hourly figures, the last errors."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    now = timezone.now()
    events = ConversionEvent.objects.using(using)
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(days=days)
    failed, counted_after = _failed_by_hour(events, start, end, using)
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
        hours=_hours(start, days, failed, using),
        last_errors=_last_errors(events, using),
        failed_counted_after=counted_after,
    )


def _count(events: QuerySet[ConversionEvent], status: str, label: str) -> StatusCount:
    indexed = within_index(events, _COUNTED_BY.get(status, _FINISHED))
    found = indexed.filter(status=status).order_by()[: COUNT_CAP + 1].count()
    return StatusCount(status, str(label), min(found, COUNT_CAP), found > COUNT_CAP)


def _hour_of(field: str, using: str) -> Any:
    """The UTC hour of *field*, grouped by in the database: a datetime or its text.

    On SQLite, Django truncates a datetime in a Python function called once per row
    (about 5 µs each); a datetime is stored there as text in the connection's time
    zone, so in UTC its first 13 characters are its hour, cut in SQL.
    """
    connection = connections[using]
    if connection.vendor == "sqlite" and connection.timezone_name == "UTC":
        return Substr(field, 1, 13)
    return TruncHour(field, tzinfo=UTC)


def _as_hour(value: datetime | str) -> datetime:
    if isinstance(value, str):
        return datetime.strptime(value, "%Y-%m-%d %H").replace(tzinfo=UTC)
    return value


def _failed_by_hour(
    events: QuerySet[ConversionEvent], start: datetime, end: datetime, using: str
) -> tuple[dict[datetime, int], datetime | None]:
    """Events that gave up in each hour from *start* to *end*, the newest COUNT_CAP.

    Two reads of the partial index ``openai_capi_event_gave_up``: where the newest
    COUNT_CAP end (if there are more), then the count per hour of those after it.
    """
    gave_up = within_index(events, _GAVE_UP).filter(
        updated_at__gte=start, updated_at__lt=end
    )
    after = (
        gave_up.order_by("-updated_at")
        .values_list("updated_at", flat=True)[COUNT_CAP : COUNT_CAP + 1]
        .first()
    )
    counted = gave_up if after is None else gave_up.filter(updated_at__gt=after)
    rows = (
        counted.annotate(hour=_hour_of("updated_at", using))
        .values("hour")
        .annotate(failed=Count("id"))
        .order_by()
        .values_list("hour", "failed")
    )
    return {_as_hour(hour): failed for hour, failed in rows}, after


def _hours(
    start: datetime, days: int, failed: Mapping[datetime, int], using: str
) -> tuple[Hour, ...]:
    rows = (
        DeliveryBatch.objects.using(using)
        .filter(created_at__gte=start, created_at__lt=start + timedelta(days=days))
        .annotate(hour=_hour_of("created_at", using))
        .values("hour", "outcome", "validate_only")
        .annotate(requests=Count("id"), events=Sum("size", default=0))
        .order_by()
        .values_list("hour", "outcome", "validate_only", "requests", "events")
    )
    requests: dict[datetime, dict[str, int]] = {}
    delivered: dict[datetime, int] = {}
    for key, outcome, validate_only, count, size in rows:
        hour = _as_hour(key)
        # Every request counts, a validate-only one too: its failure is listed among
        # the last errors, and a staging site makes no other kind. Only the events
        # of real requests were delivered.
        counts = requests.setdefault(hour, dict.fromkeys(_Outcome.values, 0))
        counts[outcome] += count
        if outcome == _Outcome.ACCEPTED and not validate_only:
            delivered[hour] = size
    none = MappingProxyType(dict.fromkeys(_Outcome.values, 0))
    hours = []
    for index in range(days * 24):
        hour = start + timedelta(hours=index)
        by_outcome = requests.get(hour)
        hours.append(
            Hour(
                start=hour,
                delivered=delivered.get(hour, 0),
                failed=failed.get(hour, 0),
                requests=none if by_outcome is None else MappingProxyType(by_outcome),
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
        within_index(events, _HAS_ERROR)
        .filter(last_error_kind=kind)
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
