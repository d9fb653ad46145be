"""The two sweeps of a pass: events no claim will record an outcome for.

The reaper takes back the events of workers that died mid-request (their lease ran
out); the expiry sweep expires pending events whose 7-day window closed, whichever
their pixel. Each outcome is written, logged and signalled here.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db.models import QuerySet
from django.dispatch import Signal
from django.utils import timezone

from django_openai_capi import alerts
from django_openai_capi.conf import conf
from django_openai_capi.db import chunked
from django_openai_capi.models import ConversionEvent, ErrorKind
from django_openai_capi.signals import EventInfo, event_expired, event_failed, send

logger = logging.getLogger("django_openai_capi.delivery")

_Status = ConversionEvent.Status


def reap_expired_leases(*, using: str = "default") -> int:
    """Return events whose worker died mid-request to ``pending``; how many.

    The request may have reached the API: sending it again is safe, because the event
    keeps its id and the API keeps the first of a (pixel, type, id). Events that have
    used every attempt become failed instead, and are logged and signalled.
    """
    now = timezone.now()
    lost = ConversionEvent.objects.using(using).lease_expired(now)
    stopped = (
        "The worker sending it stopped before recording an answer (its lease expired "
        + f"at {now:%Y-%m-%d %H:%M:%S %Z} or before); the request may or may not have "
        + "reached the API."
    )
    limit = conf.OPENAI_CAPI_MAX_ATTEMPTS
    spent = f"{stopped} It had used all {limit} attempts."
    failed = _finish(
        lost.filter(attempts__gte=limit),
        using,
        signal=event_failed,
        status=_Status.FAILED,
        kind=ErrorKind.NETWORK,
        error=spent,
        lease_expires_at=None,
        updated_at=now,
    )
    returned = lost.update(
        status=_Status.PENDING,
        lease_expires_at=None,
        next_attempt_at=now,
        last_error=f"{stopped} It is back in the queue with the same id.",
        last_error_kind=ErrorKind.NETWORK,
        updated_at=now,
    )
    return failed + returned


#: Overdue events expired per pass: bounded, so a pass stays short after an outage.
EXPIRY_CHUNK = 1000


def expire_overdue(*, using: str = "default") -> int:
    """Expire pending events whose 7-day window has closed, whichever their pixel.

    The claim expires what it picks up; this catches what no claim will, such as
    the events of a pixel that has no key.
    """
    now = timezone.now()
    overdue = ConversionEvent.objects.using(using).overdue(now)
    return _finish(
        overdue,
        using,
        signal=event_expired,
        status=_Status.EXPIRED,
        kind=ErrorKind.EXPIRED,
        error="Its 7-day window closed before it could be sent (the API refuses it now).",
        limit=EXPIRY_CHUNK,
        updated_at=now,
    )


def _finish(
    query: QuerySet[ConversionEvent],
    using: str,
    *,
    signal: Signal,
    status: str,
    kind: ErrorKind,
    error: str,
    limit: int | None = None,
    **values: Any,
) -> int:
    """Move the rows of *query* to a final *status*; log and signal each one."""
    rows = list(
        query.order_by("id").values_list(
            "id", "pixel_id", "event_type", "event_id", "source_label"
        )[:limit]
    )
    if not rows:
        return 0
    changed = 0
    for chunk in chunked([row[0] for row in rows], using):
        # The same filter again: a row may have moved on since it was read.
        changed += query.filter(pk__in=chunk).update(
            status=status, last_error=error, last_error_kind=kind, **values
        )
    logger.warning("%d events %s: %s", changed, status, error)
    alerts.events_failed(((row[1], kind, error) for row in rows), using=using)
    if signal.has_listeners(ConversionEvent):
        for pk, pixel_id, event_type, event_id, label in rows:
            send(
                signal,
                ConversionEvent,
                event=EventInfo(pk, pixel_id, event_type, event_id, label, kind, error),
            )
    return changed
