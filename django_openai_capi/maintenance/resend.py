"""Sending failed or cancelled events again, and cancelling pending ones, by hand.

What the admin's actions call, usable from code too. Neither function sends anything:
a resent event goes back to ``pending`` and is claimed by delivery as usual. Every
write is fenced by the status the event must still have, so an outcome a worker
records at the same moment is never overwritten; what changed meanwhile is counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Lower
from django.db.models.lookups import Exact
from django.utils import timezone

from django_openai_capi.conf import conf
from django_openai_capi.db import chunked
from django_openai_capi.delivery.policy import EXPIRY_MARGIN
from django_openai_capi.models import ConversionEvent

_Status = ConversionEvent.Status

#: Statuses a resend takes back to pending. "cancelled" includes the events an
#: OPENAI_CAPI_VALIDATE_ONLY delivery checked without recording them.
RESENDABLE = (_Status.FAILED, _Status.CANCELLED)
#: Refused events named one by one in a result; the rest are counted.
MAX_LISTED = 20


@dataclass(frozen=True, slots=True)
class Refusal:
    """An event left as it was, and why."""

    pk: int
    event_id: str
    reason: str

    def __str__(self) -> str:
        return f"{self.event_id}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ChangeResult:
    """What a resend or a cancel did to the events it was given."""

    #: Events moved to their new status.
    changed: int
    #: Every event refused before the write (only the first ``MAX_LISTED`` are listed).
    refused_count: int = 0
    refused: tuple[Refusal, ...] = field(default=())
    #: Eligible when read, but moved on by delivery before the fenced write.
    moved_on: int = 0


def resend(
    events: QuerySet[ConversionEvent], *, using: str | None = None
) -> ChangeResult:
    """Put the failed and cancelled *events* back to pending, to be sent again.

    Attempts start again from 0 and the next attempt is now. The identity (pixel, type,
    event id) and the event time do not change, so the API deduplicates an event that
    did reach it. The last error, its kind, its HTTP status and its claim id are kept:
    they say why the event failed, and which requests carried it (with the request id
    support asks for), until the next claim and its outcome replace them. Keeping the
    claim id is safe: outcomes are fenced by ``status = sending`` as well, and a pending
    event is sending again only under a new claim's id. An event that was never
    built (its hooks raised) has no payload, and is built again before it is sent.

    Refused, with a reason each: events in another status, events within
    ``EXPIRY_MARGIN`` of the end of their 7-day window (delivery would expire them, the
    API would refuse them), and placeholders recorded again under their real identity
    (see :func:`_re_recorded`): sending one would deliver the conversion twice, under
    two ids the API cannot deduplicate.
    """
    now = timezone.now()
    allowed = Q(status__in=RESENDABLE, expires_at__gt=now + EXPIRY_MARGIN)
    allowed &= ~_re_recorded()
    db = using or events.db

    def why(event: ConversionEvent) -> str:
        if event.status not in RESENDABLE:
            return _status_reason(event.status)
        if event.expires_at > now + EXPIRY_MARGIN:
            return (
                "its conversion was recorded again under another event id (its own "
                + "hooks failed when it was recorded, so this one holds a placeholder "
                + "id): resending it would send the conversion twice"
            )
        return (
            "past its 7-day window: the API accepts it until "
            + f"{event.expires_at:%Y-%m-%d %H:%M} UTC, and delivery stops "
            + f"{_minutes(EXPIRY_MARGIN.total_seconds())} before that"
        )

    result = _change(
        events.using(db),
        allowed,
        why,
        status=_Status.PENDING,
        attempts=0,
        next_attempt_at=now,
        lease_expires_at=None,
        sent_at=None,
        updated_at=now,
    )
    if result.changed:
        _wake_up_after_commit(db)
    return result


def _re_recorded() -> Q:
    """Unbuilt events whose identity was a placeholder, since recorded for real.

    When a conversion's identity hooks raise, the save is recorded as a failed,
    unbuilt event under the default id (``"<app_label>.<model>:<pk>"``, the source label
    in lower case). A save after the fix records the real event: over the placeholder
    when the ids agree, as a second row of the same type and source when a custom
    ``get_event_id`` differs. The placeholder must then stay failed. Events with a
    custom id of their own (several per object are legitimate) never match.
    """
    sibling = ConversionEvent.objects.filter(
        source_label=OuterRef("source_label"), event_type=OuterRef("event_type")
    ).exclude(pk=OuterRef("pk"))
    return (
        Q(built_at__isnull=True)
        & ~Q(source_label="")
        # Both sides lowered: the pk part of the placeholder keeps its case.
        & Q(Exact(Lower("event_id"), Lower("source_label")))
        & Q(Exists(sibling))
    )


def cancel(
    events: QuerySet[ConversionEvent], *, by: str = "", using: str | None = None
) -> ChangeResult:
    """Cancel the pending *events*: they will not be sent (a resend can undo it)."""
    now = timezone.now()
    who = f" by {by}" if by else ""
    return _change(
        events.using(using or events.db),
        Q(status=_Status.PENDING),
        lambda event: _status_reason(event.status),
        status=_Status.CANCELLED,
        last_error=f"Cancelled in the admin{who} at {now:%Y-%m-%d %H:%M:%S} UTC.",
        last_error_kind="",
        updated_at=now,
    )


def _change(
    events: QuerySet[ConversionEvent],
    allowed: Q,
    why: Callable[[ConversionEvent], str],
    **values: object,
) -> ChangeResult:
    events = events.order_by()
    refused_rows = events.exclude(allowed)
    listed = list(
        refused_rows.order_by("pk").only("pk", "event_id", "status", "expires_at")[
            :MAX_LISTED
        ]
    )
    refused_count = len(listed) if len(listed) < MAX_LISTED else refused_rows.count()
    # The eligible rows are read, then written under the same condition again (fenced):
    # a row a worker moved on in between keeps what the worker wrote, and is counted.
    # Not a count and an UPDATE in one transaction: under PostgreSQL's READ COMMITTED
    # each statement has its own snapshot, so their difference would only be a guess.
    wanted = list(events.filter(allowed).values_list("pk", flat=True))
    changed = 0
    for chunk in chunked(wanted, events.db):
        changed += events.filter(pk__in=chunk).filter(allowed).update(**values)
    return ChangeResult(
        changed=changed,
        refused_count=refused_count,
        refused=tuple(Refusal(e.pk, e.event_id, why(e)) for e in listed),
        moved_on=len(wanted) - changed,
    )


_STATUS_REASONS: dict[str, str] = {
    _Status.PENDING: "already pending: delivery will send it",
    _Status.SENDING: "being sent right now",
    _Status.SENT: "already sent: the API has it",
    _Status.FAILED: "failed: resend it instead",
    _Status.EXPIRED: "expired: past the 7-day window the API accepts",
    _Status.CANCELLED: "already cancelled",
}


def _status_reason(status: str) -> str:
    return _STATUS_REASONS.get(status, f"status {status!r}")


def _minutes(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _wake_up_after_commit(using: str) -> None:
    """Enqueue the sending task after the commit, where sending does not block.

    Only with ``OPENAI_CAPI_DISPATCH = "task"``: "inline" would send inside the
    admin's request, and "none" leaves it to the worker command, as always.
    """
    if conf.OPENAI_CAPI_DISPATCH != "task" or not conf.OPENAI_CAPI_SEND_ENABLED:
        return
    from django_openai_capi.dispatch import enqueue

    transaction.on_commit(lambda: enqueue(using), using=using, robust=True)
