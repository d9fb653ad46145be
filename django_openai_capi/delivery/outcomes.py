"""Writing what happened to claimed events.

Every write is fenced: it touches only rows still ``sending`` under this claim's batch
id, so a worker that lost its lease (and whose events another worker took over) cannot
overwrite what the newer claim recorded.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db.models import Case, DateTimeField, DurationField, F, Value, When
from django.db.models.functions import Greatest, Least
from django.utils import timezone

from django_openai_capi.conf import conf
from django_openai_capi.delivery.claim import Claim, ClaimedEvent, chunked
from django_openai_capi.delivery.policy import EXPIRY_MARGIN, retry_delay
from django_openai_capi.models import ConversionEvent, ErrorKind
from django_openai_capi.redaction import redact

_Status = ConversionEvent.Status


def _fenced_update(
    claim: Claim, events: Sequence[ClaimedEvent], using: str, **values: Any
) -> int:
    values.setdefault("lease_expires_at", None)
    values.setdefault("updated_at", timezone.now())
    rows = ConversionEvent.objects.using(using).held_by(claim.id)
    if _is_whole(claim, events):
        # The whole claim: its claim id alone names exactly its rows still sending,
        # where a list of ids would cost a parameter (and an index probe) per event.
        return rows.update(**values)
    updated = 0
    for chunk in chunked([event.pk for event in events], using):
        updated += rows.filter(pk__in=chunk).update(**values)
    return updated


def _is_whole(claim: Claim, events: Sequence[ClaimedEvent]) -> bool:
    # Compared as sets, not by length: a list holding one event twice is not the claim.
    return len(events) == len(claim.events) and {event.pk for event in events} == {
        event.pk for event in claim.events
    }


def mark_sent(
    claim: Claim, events: Sequence[ClaimedEvent], http_status: int, using: str
) -> int:
    now = timezone.now()
    return _fenced_update(
        claim,
        events,
        using,
        status=_Status.SENT,
        sent_at=now,
        updated_at=now,
        last_http_status=http_status,
        last_error="",
        last_error_kind="",
    )


def mark_validated(
    claim: Claim, events: Sequence[ClaimedEvent], http_status: int, using: str
) -> int:
    """Events a ``validate_only`` delivery checked: they end cancelled, not sent.

    The API records nothing for a validate-only request, so "sent" would be a lie;
    a resend from the admin sends them for real.
    """
    return _fenced_update(
        claim,
        events,
        using,
        status=_Status.CANCELLED,
        last_http_status=http_status,
        last_error="Validated by the API with validate_only (OPENAI_CAPI_VALIDATE_ONLY): "
        + "accepted, but not recorded by OpenAI. Resend it to send it for real.",
        last_error_kind="",
    )


def mark_refused(
    claim: Claim,
    event: ClaimedEvent,
    *,
    status: str,
    kind: ErrorKind,
    message: str,
    http_status: int | None,
    using: str,
) -> int:
    """One event the API refused on its own (failed) or as too old (expired)."""
    return _fenced_update(
        claim,
        [event],
        using,
        status=status,
        last_http_status=http_status,
        last_error=redact(message),
        last_error_kind=kind,
    )


def mark_expired(
    claim: Claim, events: Sequence[ClaimedEvent], message: str, using: str
) -> int:
    return _fenced_update(
        claim,
        events,
        using,
        status=_Status.EXPIRED,
        last_error=message,
        last_error_kind=ErrorKind.EXPIRED,
    )


def mark_retry(
    claim: Claim,
    events: Sequence[ClaimedEvent],
    *,
    kind: ErrorKind,
    message: str,
    http_status: int | None,
    retry_after: float | None,
    using: str,
) -> tuple[int, list[ClaimedEvent]]:
    """Put events back for a later attempt; fail those that used their last one.

    Returns how many were put back, and the events that failed. The next attempt is
    never scheduled past the event's window: at the latest it comes due as the window
    closes, and is expired then instead of waiting on unseen.
    """
    limit = conf.OPENAI_CAPI_MAX_ATTEMPTS
    exhausted = [event for event in events if event.attempts >= limit]
    retried = [event for event in events if event.attempts < limit]
    error = redact(message)
    if exhausted:
        _fenced_update(
            claim,
            exhausted,
            using,
            status=_Status.FAILED,
            last_http_status=http_status,
            last_error=redact(f"Gave up after {limit} attempts. Last: {message}"),
            last_error_kind=kind,
        )
    if not retried:
        return 0, exhausted
    now = timezone.now()
    by_attempts: dict[int, list[ClaimedEvent]] = defaultdict(list)
    for event in retried:
        by_attempts[event.attempts].append(event)
    # One statement for the whole batch: the wait depends only on the attempt count,
    # and a batch holds few distinct counts.
    when = Case(
        *(
            When(
                attempts=attempts,
                then=Value(now + retry_delay(attempts, retry_after=retry_after)),
            )
            for attempts in by_attempts
        ),
        output_field=DateTimeField(),
    )
    latest = F("expires_at") - Value(EXPIRY_MARGIN, output_field=DurationField())
    put_back = _fenced_update(
        claim,
        retried,
        using,
        status=_Status.PENDING,
        next_attempt_at=Greatest(Least(when, latest), Value(now)),
        last_http_status=http_status,
        last_error=error,
        last_error_kind=kind,
    )
    return put_back, exhausted


def mark_held(
    claim: Claim,
    events: Sequence[ClaimedEvent],
    *,
    until: datetime,
    kind: ErrorKind,
    message: str,
    http_status: int | None,
    using: str,
) -> int:
    """Put events back without counting the attempt: the pixel, not they, is at fault."""
    return _fenced_update(
        claim,
        events,
        using,
        status=_Status.PENDING,
        attempts=F("attempts") - 1,
        next_attempt_at=until,
        last_http_status=http_status,
        last_error=redact(message),
        last_error_kind=kind,
    )


def release(claim: Claim, using: str) -> int:
    """Give a claim back unsent, as it was before it was claimed.

    For a claim taken ahead (while the previous request was in flight) that will not be
    sent after all: its pixel was paused by that request's answer, or the worker is
    stopping. The attempt it counted is given back; when it is next due is unchanged.
    """
    return _fenced_update(
        claim, claim.events, using, status=_Status.PENDING, attempts=F("attempts") - 1
    )
