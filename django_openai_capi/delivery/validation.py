"""Checking stored events against the API with ``validate_only``, changing nothing.

Sending a backlog that way tells which events the API would refuse before they are
sent for real: :func:`validate_events` checks the events given (the admin's action),
:func:`validate_due` those delivery would send next (``openai_capi_send
--validate-only``). The requests themselves are made in ``dry_run.py``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from django_openai_capi.api import spec
from django_openai_capi.conf import conf
from django_openai_capi.delivery.dry_run import Check, EventVerdict, PixelCheck
from django_openai_capi.models import ConversionEvent

__all__ = [
    "Check",
    "EventVerdict",
    "ValidationReport",
    "iter_validate_pending",
    "validate_due",
    "validate_events",
    "validate_pending",
]


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
        check = PixelCheck(pixel_id, size, now)
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
    events = ConversionEvent.objects.using(using).of_pixels(pixel_ids)
    for pixel_id in events.due_pixels():
        check = PixelCheck(pixel_id, size, now)
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


@dataclass
class ValidationReport:
    """What a check of the due events found, summed up."""

    counts: Counter[Check] = field(default_factory=Counter)
    #: Why events were not checked, and how many for each reason.
    reasons: Counter[str] = field(default_factory=Counter)
    #: Pending events of the checked pixels not built yet, so not checked.
    unbuilt: int = 0

    def add(self, verdict: EventVerdict) -> None:
        self.counts[verdict.check] += 1
        if verdict.check is Check.NOT_CHECKED:
            self.reasons[verdict.message] += 1

    @property
    def checked(self) -> int:
        return self.counts.total()

    def problems(self) -> list[str]:
        """Why events went unchecked: one line per reason."""
        # An event's own message says "Not checked: HTTP 503: ..."; after the count
        # that would be said twice.
        lines = [
            f"{count} not checked: {why.removeprefix('Not checked: ')}"
            for why, count in self.reasons.items()
        ]
        if self.unbuilt:
            lines.append(
                f"{self.unbuilt} pending events are not built yet, so not checked: "
                + "delivery builds them first (run openai_capi_send)."
            )
        return lines

    def summary(self) -> str:
        return (
            f"Checked with validate_only: {self.counts[Check.OK]} ok, "
            + f"{self.counts[Check.REFUSED]} refused, {self.counts[Check.NOT_CHECKED]} "
            + "not checked. No event was changed, and OpenAI recorded nothing."
        )


def validate_due(
    *,
    pixel_ids: Sequence[str] | None = None,
    batch_size: int | None = None,
    max_batches: int | None = None,
    using: str = "default",
    should_stop: Callable[[], bool] = lambda: False,
    on_verdict: Callable[[EventVerdict, ValidationReport], None] = lambda *_: None,
) -> ValidationReport:
    """Check the due events (at most *max_batches* requests' worth); sum it up.

    *on_verdict* hears of each verdict as it comes, with the report so far;
    *should_stop* is asked after each.
    """
    report = ValidationReport()
    for verdict in iter_validate_pending(
        pixel_ids=pixel_ids,
        limit=_limit(batch_size, max_batches),
        batch_size=batch_size,
        using=using,
    ):
        report.add(verdict)
        on_verdict(verdict, report)
        if should_stop():
            break
    events = ConversionEvent.objects.using(using).of_pixels(pixel_ids)
    report.unbuilt = events.unbuilt().count()
    return report


def _limit(batch_size: int | None, max_batches: int | None) -> int | None:
    return None if max_batches is None else max_batches * _batch_size(batch_size)


def _batch_size(given: int | None) -> int:
    size = conf.OPENAI_CAPI_BATCH_SIZE if given is None else given
    if not 1 <= size <= spec.MAX_EVENTS_PER_REQUEST:
        raise ValueError(
            f"batch_size must be 1 to {spec.MAX_EVENTS_PER_REQUEST}, got {size}"
        )
    return size


def _due(pixel_id: str, now: datetime, using: str) -> QuerySet[ConversionEvent]:
    # What a claim may take, in primary-key order so that pages can be read by keyset.
    return (
        ConversionEvent.objects.using(using)
        .due(pixel_id, now)
        .select_related("stored_payload")
        .only(
            "pk", "pixel_id", "event_type", "event_id", "stored_payload", "expires_at"
        )
        .order_by("pk")
    )
