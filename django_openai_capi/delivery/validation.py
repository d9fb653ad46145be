"""Checking stored events against the API with ``validate_only``, changing nothing.

The API validates a ``validate_only`` request as it would a real one and records
nothing. Sending a backlog that way tells which events it would refuse before they are
sent for real; the refused ones are pinpointed with the same isolation delivery uses.
Nothing here claims, updates or records anything: an event being checked can be
claimed and sent by a worker at the same moment, and neither notices the other.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from django_openai_capi.api import spec
from django_openai_capi.conf import conf
from django_openai_capi.delivery.claim import due_events, due_pixels
from django_openai_capi.delivery.isolation import (
    Accepted,
    Answer,
    Refused,
    isolate,
)
from django_openai_capi.delivery.policy import EXPIRY_MARGIN, Verdict, error_kind
from django_openai_capi.delivery.sender import post, what_to_do
from django_openai_capi.exceptions import CapiConfigurationError
from django_openai_capi.models import ConversionEvent, ErrorKind
from django_openai_capi.redaction import redact

_Status = ConversionEvent.Status

NOT_BUILT = "Not built yet: its payload is built the next time delivery runs."
CLOSING_WINDOW = (
    "Too close to the end of its 7-day window: delivery expires it instead of "
    + "sending it, and the API would refuse it."
)
OUT_OF_BUDGET = (
    "The API refused this group more often than one check may ask while isolating "
    + "the bad events; check these events in smaller groups."
)


class Check(enum.Enum):
    """What the API said about one event."""

    #: Accepted with ``validate_only``: sent for real, it would be accepted too.
    OK = "ok"
    #: Refused: sent for real, it would fail (or expire, when ``too_old``).
    REFUSED = "refused"
    #: Not asked about: no key, the API failed, or the event cannot be sent at all.
    NOT_CHECKED = "not_checked"


@dataclass(frozen=True, slots=True)
class EventVerdict:
    """The result of checking one event."""

    pk: int
    pixel_id: str
    event_type: str
    event_id: str
    check: Check
    #: The API's message for a refused event, or why it was not checked; "" when ok.
    message: str = ""
    #: Refused for its timestamp: delivery would expire it rather than fail it.
    too_old: bool = False
    http_status: int | None = None
    request_id: str = ""

    @property
    def ok(self) -> bool:
        return self.check is Check.OK


def validate_events(
    events: Iterable[ConversionEvent], *, batch_size: int | None = None
) -> list[EventVerdict]:
    """Check *events* with ``validate_only`` requests; one verdict per event, in order.

    Events are grouped per pixel, in requests of at most *batch_size* (default
    ``OPENAI_CAPI_BATCH_SIZE``). Their status does not matter, and does not change.
    """
    size = _batch_size(batch_size)
    now = timezone.now()
    by_pixel: dict[str, dict[int, ConversionEvent]] = {}
    for event in events:
        by_pixel.setdefault(event.pixel_id, {}).setdefault(event.pk, event)
    verdicts: dict[int, EventVerdict] = {}
    order: list[int] = []
    for pixel_id, group in by_pixel.items():
        order.extend(group)
        check = _PixelCheck(pixel_id, size, now)
        verdicts.update((v.pk, v) for v in check.events(list(group.values())))
    return [verdicts[pk] for pk in order]


def iter_validate_pending(
    *,
    pixel_ids: Sequence[str] | None = None,
    limit: int | None = None,
    batch_size: int | None = None,
    using: str = "default",
) -> Iterator[EventVerdict]:
    """Check the due, built, pending events (at most *limit*), yielding verdicts as they come.

    Reads a page of at most *batch_size* events at a time, so a backlog of any size is
    checked in bounded memory. Stopping the iteration early leaves nothing behind.
    """
    size = _batch_size(batch_size)
    now = timezone.now()
    left = limit
    for pixel_id in due_pixels(only=pixel_ids, using=using):
        check = _PixelCheck(pixel_id, size, now)
        after = 0
        while left is None or left > 0:
            take = size if left is None else min(size, left)
            page = list(_due(pixel_id, now, using).filter(pk__gt=after)[:take])
            if not page:
                break
            after = page[-1].pk
            if left is not None:
                left -= len(page)
            yield from check.events(page)
            if len(page) < take:
                break
        if left == 0:
            return


def validate_pending(
    *,
    pixel_ids: Sequence[str] | None = None,
    limit: int | None = None,
    batch_size: int | None = None,
    using: str = "default",
) -> list[EventVerdict]:
    """:func:`iter_validate_pending`, as a list."""
    return list(
        iter_validate_pending(
            pixel_ids=pixel_ids, limit=limit, batch_size=batch_size, using=using
        )
    )


def due_count(*, pixel_ids: Sequence[str] | None = None, using: str = "default") -> int:
    """How many events :func:`iter_validate_pending` would check now."""
    query = ConversionEvent.objects.using(using).due()
    if pixel_ids is not None:
        query = query.filter(pixel_id__in=pixel_ids)
    return query.count()


def _batch_size(given: int | None) -> int:
    size = conf.OPENAI_CAPI_BATCH_SIZE if given is None else given
    if not 1 <= size <= spec.MAX_EVENTS_PER_REQUEST:
        raise ValueError(
            f"batch_size must be 1 to {spec.MAX_EVENTS_PER_REQUEST}, got {size}"
        )
    return size


def _due(pixel_id: str, now: datetime, using: str) -> QuerySet[ConversionEvent]:
    # The claim's filter, in primary-key order so that pages can be read by keyset.
    return (
        due_events(pixel_id, now, using)
        .select_related("stored_payload")
        .only(
            "pk", "pixel_id", "event_type", "event_id", "stored_payload", "expires_at"
        )
        .order_by("pk")
    )


@dataclass(frozen=True, slots=True)
class _Blocked:
    """Why no more requests are made for a pixel, as its verdicts tell it."""

    message: str
    http_status: int | None = None
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class _Postable:
    event: ConversionEvent
    payload: str


class _PixelCheck:
    """Checks the events of one pixel, request after request, until the API fails."""

    def __init__(self, pixel_id: str, size: int, now: datetime) -> None:
        self.pixel_id = pixel_id
        self.size = size
        self.closing = now + EXPIRY_MARGIN
        self.blocked: _Blocked | None = None
        try:
            conf.api_key_for(pixel_id)
        except CapiConfigurationError as exc:
            self.blocked = _Blocked(f"Not checked: {exc}")

    def events(self, events: Sequence[ConversionEvent]) -> Iterator[EventVerdict]:
        postable: list[_Postable] = []
        for event in events:
            if event.payload is None:
                yield _verdict(event, Check.NOT_CHECKED, NOT_BUILT)
            elif event.expires_at <= self.closing:
                # One such event would make the API refuse its whole request.
                yield _verdict(event, Check.NOT_CHECKED, CLOSING_WINDOW)
            else:
                postable.append(_Postable(event, event.payload))
        for start in range(0, len(postable), self.size):
            yield from self._request(postable[start : start + self.size])

    def _request(self, events: Sequence[_Postable]) -> Iterator[EventVerdict]:
        if self.blocked is not None:
            # After a refused key or an outage, more requests would only get the same.
            yield from self._not_checked(events, self.blocked)
            return

        def send(group: Sequence[_Postable]) -> Answer:
            payloads = [item.payload for item in group]
            return post(self.pixel_id, payloads, validate_only=True)

        for step in isolate(events, send):
            if isinstance(step, Accepted):
                for item in step.events:
                    yield _verdict(
                        item.event,
                        Check.OK,
                        http_status=step.answer.status,
                        request_id=step.answer.request_id,
                    )
            elif isinstance(step, Refused):
                yield _verdict(
                    step.event.event,
                    Check.REFUSED,
                    redact(step.message),
                    too_old=step.too_old,
                    http_status=step.answer.status,
                    request_id=step.answer.request_id,
                )
            elif step.answer is None:
                # Only this group ran out of requests: the next one gets a fresh budget.
                yield from self._not_checked(step.events, _Blocked(OUT_OF_BUDGET))
            else:
                self.blocked = _failed(step.answer, request_fault=step.request_fault)
                yield from self._not_checked(step.events, self.blocked)

    @staticmethod
    def _not_checked(
        events: Iterable[_Postable], blocked: _Blocked
    ) -> Iterator[EventVerdict]:
        for item in events:
            yield _verdict(
                item.event,
                Check.NOT_CHECKED,
                blocked.message,
                http_status=blocked.http_status,
                request_id=blocked.request_id,
            )


def _failed(answer: Answer, *, request_fault: bool) -> _Blocked:
    if request_fault:
        advice = what_to_do(answer.status, ErrorKind.REQUEST, answer.text)
    elif answer.verdict is Verdict.HALT:
        advice = what_to_do(answer.status, error_kind(answer.status), answer.text)
    else:
        advice = "This is usually temporary: check again later."
    message = f"Not checked: {answer.text}"
    if answer.request_id:
        message += f" (request {answer.request_id})"
    return _Blocked(f"{message}. {advice}", answer.status, answer.request_id)


def _verdict(
    event: ConversionEvent,
    check: Check,
    message: str = "",
    *,
    too_old: bool = False,
    http_status: int | None = None,
    request_id: str = "",
) -> EventVerdict:
    return EventVerdict(
        pk=event.pk,
        pixel_id=event.pixel_id,
        event_type=event.event_type,
        event_id=event.event_id,
        check=check,
        message=message,
        too_old=too_old,
        http_status=http_status,
        request_id=request_id,
    )
